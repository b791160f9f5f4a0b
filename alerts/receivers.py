"""Signal receivers: on the request path, so they only decide whether to queue a task.

A processed delivery costs no query here unless an enabled rule subscribes to
new submissions (the rules are cached, ``alerts.selectors.watches``); a
failed, unrouted or token-rejected one queues one small ``alert_incident``
task when a rule watches it. Everything else happens in the task worker.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from alerts.incidents import incident_enqueue
from alerts.models import AlertKind, AlertRule
from alerts.selectors import HANDLER_ERROR_CODES, is_watched, watches_clear
from submissions.models import HandlerRun, WebhookEvent
from submissions.signals import delivery_answered, follow_up_dead
from submissions.tokens import TOKEN_ERROR_CODES


def incident_kind(event: WebhookEvent) -> str | None:
    """The kind of incident an answered delivery is, if any: from its status alone."""
    status = event.status
    if status == WebhookEvent.Status.PROCESSED:
        return AlertKind.NEW_SUBMISSION
    if status == WebhookEvent.Status.FAILED and event.error_code in HANDLER_ERROR_CODES:
        return AlertKind.HANDLER_FAILING
    if status == WebhookEvent.Status.UNROUTED:
        return AlertKind.UNKNOWN_HANDLER
    if status == WebhookEvent.Status.REJECTED and event.error_code in TOKEN_ERROR_CODES:
        return AlertKind.REJECTED_TOKENS
    return None


@receiver(delivery_answered, sender=WebhookEvent, dispatch_uid="alerts.answered")
def on_delivery_answered(*, event: WebhookEvent, **kwargs: Any) -> None:
    kind = incident_kind(event)
    if kind is not None and is_watched(
        kind=kind, bot_id=event.bot_id, handler_name=event.handler_name
    ):
        incident_enqueue(kind=kind, event_id=event.pk)


@receiver(follow_up_dead, sender=WebhookEvent, dispatch_uid="alerts.follow_up_dead")
def on_follow_up_dead(*, event: WebhookEvent, run: HandlerRun, **kwargs: Any) -> None:
    if is_watched(
        kind=AlertKind.FOLLOW_UP_DEAD,
        bot_id=event.bot_id,
        handler_name=run.handler_name,
    ):
        incident_enqueue(
            kind=AlertKind.FOLLOW_UP_DEAD, event_id=event.pk, run_id=run.pk
        )


@receiver(post_save, sender=AlertRule, dispatch_uid="alerts.rule_saved")
@receiver(post_delete, sender=AlertRule, dispatch_uid="alerts.rule_deleted")
def on_rule_changed(**kwargs: Any) -> None:
    """This process sees a changed rule at once; others within ``RULE_CACHE_SECONDS``."""
    watches_clear()
