"""Sending a recorded alert, in the task worker, with retries and backoff.

``delivery_enqueue`` queues ``deliver_alert`` once the current transaction
commits; each run makes one attempt through ``sent_alert_deliver`` and records
it on the ``SentAlert``. A failure before ``ALERTS['MAX_ATTEMPTS']`` is
retried after ``retry_delay_seconds`` (the status is then ``retrying``); the
last failure, or one that another try would repeat, leaves it ``failed``.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from alerts import channels
from alerts.conf import alert_settings
from alerts.models import Channel, SentAlert
from alerts.services import sent_alert_record_attempt

logger = logging.getLogger("alerts.delivery")


def delivery_enqueue(*, sent_alert: SentAlert, delay_seconds: int = 0) -> None:
    """Queue one attempt at sending ``sent_alert`` once the current transaction commits."""
    sent_alert_id = sent_alert.pk

    def enqueue() -> None:
        job = deliver_alert
        if delay_seconds:
            job = job.using(run_after=timezone.now() + timedelta(seconds=delay_seconds))
        job.enqueue(sent_alert_id=sent_alert_id)

    transaction.on_commit(enqueue, robust=True)


def retry_delay_seconds(attempt: int) -> int:
    """Exponential backoff: the base delay doubled for each attempt so far, capped."""
    conf = alert_settings()
    return min(conf.retry_seconds * 2 ** (attempt - 1), conf.retry_max_seconds)


def _send(sent_alert: SentAlert) -> None:
    recipient = sent_alert.recipient
    if recipient is None:
        raise channels.PermanentDeliveryError(
            "The recipient was removed from the rule before the alert was sent."
        )
    if sent_alert.channel == Channel.EMAIL:
        channels.send_email(
            to=recipient.target, subject=sent_alert.subject, body=sent_alert.body
        )
    else:
        channels.post_webhook(
            url=recipient.target,
            payload=sent_alert.payload or {},
            timeout=alert_settings().webhook_timeout_seconds,
        )


def sent_alert_deliver(*, sent_alert_id: int) -> SentAlert | None:
    """Make one attempt at sending a recorded alert and record how it went.

    None when the record is gone (deleted in the admin before it was sent).
    """
    sent_alert = (
        SentAlert.objects.select_related("recipient").filter(pk=sent_alert_id).first()
    )
    if sent_alert is None:
        return None
    if sent_alert.status in (SentAlert.Status.SENT, SentAlert.Status.FAILED):
        return sent_alert  # a second copy of the task: already settled
    attempt = sent_alert.attempts + 1
    max_attempts = alert_settings().max_attempts
    started_at, started = timezone.now(), time.perf_counter()
    error = ""
    try:
        _send(sent_alert)
    except Exception as exc:  # recorded on the alert, never raised into the worker
        permanent = isinstance(exc, channels.PermanentDeliveryError)
        status = (
            SentAlert.Status.RETRYING
            if attempt < max_attempts and not permanent
            else SentAlert.Status.FAILED
        )
        reason = (
            str(exc)
            if isinstance(exc, channels.DeliveryError)
            else f"{type(exc).__name__}: {exc}"
        )
        error = f"Attempt {attempt} of {max_attempts}: {reason}"
        logger.warning(
            "alert %s to %s failed (%s): %s",
            sent_alert.pk,
            sent_alert.recipient_shown,
            status,
            reason,
            # Expected failures say enough; anything else needs its traceback.
            exc_info=not isinstance(exc, channels.DeliveryError),
            extra={"sent_alert_id": sent_alert.pk},
        )
    else:
        status = SentAlert.Status.SENT
    sent_alert = sent_alert_record_attempt(
        sent_alert=sent_alert,
        status=status,
        started_at=started_at,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        error=error,
    )
    if status == SentAlert.Status.RETRYING:
        delivery_enqueue(
            sent_alert=sent_alert, delay_seconds=retry_delay_seconds(attempt)
        )
    return sent_alert


@task()
def deliver_alert(sent_alert_id: int) -> str:
    """One attempt at sending a recorded alert."""
    sent_alert = sent_alert_deliver(sent_alert_id=sent_alert_id)
    return sent_alert.status if sent_alert else "deleted"
