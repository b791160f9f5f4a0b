"""Writes: the rate limiter's state, the alerts to send, and each attempt to send them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from alerts.messages import Claim, Message
from alerts.models import AlertRecipient, AlertRule, AlertState, Channel, SentAlert


def _locked_state(*, rule: AlertRule, key: str) -> AlertState:
    """The (rule, key) state row, created if missing, locked until the transaction ends.

    Two workers creating it at once: the unique constraint lets one insert,
    ``get_or_create`` reads the other's row back. On SQLite the transaction
    already holds the database's write lock (``IMMEDIATE``).
    """
    AlertState.objects.get_or_create(rule=rule, key=key)
    return AlertState.objects.select_for_update().get(rule=rule, key=key)


def alert_state_claim(
    *, rule: AlertRule, key: str, at: datetime, window: timedelta
) -> Claim | None:
    """Count one incident at ``at``; a ``Claim`` when it opens a new window, else None.

    The first incident for a (rule, key) sends; the rest until ``window`` has
    passed since it are held back and counted; the first after that sends
    again and reports them. Call inside the transaction that records the
    alerts, so a held-back count and a sent alert are never half-written.
    """
    with transaction.atomic():
        state = _locked_state(rule=rule, key=key)
        last_incident_at = max(filter(None, [state.last_incident_at, at]))
        if (
            state.window_started_at is not None
            and at < state.window_started_at + window
        ):
            state.pending_count += 1
            state.first_pending_at = min(filter(None, [state.first_pending_at, at]))
            state.last_incident_at = last_incident_at
            state.save(
                update_fields=["pending_count", "first_pending_at", "last_incident_at"]
            )
            return None
        claim = Claim(
            count=state.pending_count + 1,
            first_at=min(filter(None, [state.first_pending_at, at])),
            last_at=at,
            previous_sent_at=state.last_sent_at,
        )
        state.window_started_at = at
        state.last_sent_at = timezone.now()
        state.pending_count = 0
        state.first_pending_at = None
        state.last_incident_at = last_incident_at
        state.save()
        return claim


def alert_state_claim_once(*, rule: AlertRule, key: str, at: datetime) -> bool:
    """True the first time (rule, key) is claimed, False ever after (daily digests)."""
    with transaction.atomic():
        _, created = AlertState.objects.get_or_create(
            rule=rule,
            key=key,
            defaults={
                "window_started_at": at,
                "last_sent_at": timezone.now(),
                "last_incident_at": at,
            },
        )
    return created


def sent_alert_create(
    *,
    rule: AlertRule,
    recipient: AlertRecipient,
    kind: str,
    key: str,
    message: Message,
    count: int,
    first_at: datetime | None,
    last_at: datetime | None,
) -> SentAlert:
    """Record one alert for one recipient, queued (the task worker sends it)."""
    return SentAlert.objects.create(
        rule=rule,
        recipient=recipient,
        kind=kind,
        key=key,
        channel=recipient.channel,
        recipient_shown=recipient.shown,
        subject=message.subject,
        body=message.text,
        payload=message.payload() if recipient.channel == Channel.WEBHOOK else None,
        url=message.url,
        incident_count=count,
        first_incident_at=first_at,
        last_incident_at=last_at,
    )


def sent_alert_record_attempt(
    *,
    sent_alert: SentAlert,
    status: str,
    started_at: datetime,
    duration_ms: float,
    error: str = "",
) -> SentAlert:
    """Add one delivery attempt to the record, with its outcome."""
    attempt = sent_alert.attempts + 1
    entry: dict[str, Any] = {
        "attempt": attempt,
        "at": started_at.isoformat(),
        "duration_ms": duration_ms,
        "outcome": "sent" if status == SentAlert.Status.SENT else "error",
    }
    if error:
        entry["error"] = error
    sent_alert.attempts = attempt
    sent_alert.status = status
    sent_alert.error = error
    sent_alert.attempt_log = [*sent_alert.attempt_log, entry]
    if status == SentAlert.Status.SENT:
        sent_alert.sent_at = timezone.now()
    sent_alert.save(
        update_fields=["attempts", "status", "error", "attempt_log", "sent_at"]
    )
    return sent_alert
