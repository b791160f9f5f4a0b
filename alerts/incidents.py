"""Incidents, in the task worker: which rules they match, whether they send, what is queued.

The request path only queues ``alert_incident`` (``incident_enqueue``), after
the delivery's transaction commits; ``incident_evaluate`` reads the event back,
finds the enabled rules that match it, applies each rule's threshold and
window (``alert_state_claim``), records one ``SentAlert`` per recipient and
queues its delivery. ``digest_send`` does the same once a day for the
new-submission rules that want a digest.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from alerts.delivery import delivery_enqueue
from alerts.messages import Claim, Incident, digest_message, incident_message
from alerts.models import AlertKind, AlertRecipient, AlertRule, SentAlert
from alerts.selectors import (
    day_bounds,
    digest_rules,
    incidents_in_window,
    rules_for_incident,
    submission_counts,
    token_error_counts,
)
from alerts.services import (
    alert_state_claim,
    alert_state_claim_once,
    sent_alert_create,
)
from submissions.models import FormSubmission, HandlerRun, WebhookEvent

logger = logging.getLogger("alerts.incidents")


def incident_enqueue(*, kind: str, event_id: int, run_id: int | None = None) -> None:
    """Queue the evaluation of one incident once the current transaction commits."""

    def enqueue() -> None:
        alert_incident.enqueue(kind=kind, event_id=event_id, run_id=run_id)

    transaction.on_commit(enqueue, robust=True)


def _short_type(dotted: str) -> str:
    return dotted.rpartition(".")[2]


def incident_read(
    *, kind: str, event_id: int, run_id: int | None = None
) -> Incident | None:
    """The incident as stored, or None when there is nothing (left) to report."""
    event = WebhookEvent.objects.select_related("bot").filter(pk=event_id).first()
    if event is None:  # purged since
        return None
    incident = Incident(
        kind=kind,
        bot=event.bot,
        handler_name=event.handler_name,
        at=event.received_at,
        event_id=event.pk,
    )
    if kind == AlertKind.HANDLER_FAILING:
        run = event.runs.filter(outcome=HandlerRun.Outcome.FAILED).last()
        error_type = run.error_type if run else event.error_detail.partition(":")[0]
        return replace(incident, error_type=_short_type(error_type))
    if kind == AlertKind.FOLLOW_UP_DEAD:
        run = HandlerRun.objects.filter(pk=run_id, event=event).first()
        if run is None:
            return None
        tries = event.runs.filter(trigger=HandlerRun.Trigger.FOLLOW_UP).count()
        return replace(
            incident,
            handler_name=run.handler_name,
            at=run.finished_at,
            error_type=_short_type(run.error_type),
            tries=tries,
        )
    if kind == AlertKind.NEW_SUBMISSION:
        submission = FormSubmission.objects.filter(event=event).first()
        if submission is None:  # a delivery with no form
            return None
        return replace(
            incident, handler_name=submission.handler_name, at=submission.submitted_at
        )
    return incident


def incident_evaluate(
    *, kind: str, event_id: int, run_id: int | None = None
) -> list[SentAlert]:
    """Apply every matching rule to one incident; the alerts it queued (often none)."""
    incident = incident_read(kind=kind, event_id=event_id, run_id=run_id)
    if incident is None:
        return []
    queued: list[SentAlert] = []
    for rule in rules_for_incident(
        kind=kind, bot_id=incident.bot.pk, handler_name=incident.handler_name
    ):
        queued += _apply_rule(rule=rule, incident=incident)
    return queued


def _apply_rule(*, rule: AlertRule, incident: Incident) -> list[SentAlert]:
    window = rule.window
    if incident.kind == AlertKind.REJECTED_TOKENS:
        token_errors = token_error_counts(
            bot_id=incident.bot.pk, until=incident.at, window=window
        )
        if sum(token_errors.values()) < rule.effective_threshold:
            return []
        incident = replace(incident, token_errors=token_errors)
    elif rule.effective_threshold > 1:
        seen = incidents_in_window(
            kind=incident.kind,
            bot_id=incident.bot.pk,
            handler_name=incident.handler_name,
            until=incident.at,
            window=window,
        )
        if seen < rule.effective_threshold:
            return []
    recipients = list(rule.recipients.all())
    with transaction.atomic():
        claim = alert_state_claim(
            rule=rule, key=incident.key, at=incident.at, window=window
        )
        if claim is None:
            return []
        if not recipients:
            logger.warning("alert rule %r has no recipients", rule.name)
        return [
            _record(rule=rule, recipient=recipient, incident=incident, claim=claim)
            for recipient in recipients
        ]


def _record(
    *, rule: AlertRule, recipient: AlertRecipient, incident: Incident, claim: Claim
) -> SentAlert:
    message = incident_message(
        incident=incident, rule=rule, claim=claim, channel=recipient.channel
    )
    sent_alert = sent_alert_create(
        rule=rule,
        recipient=recipient,
        kind=incident.kind,
        key=incident.key,
        message=message,
        count=claim.count,
        first_at=claim.first_at,
        last_at=claim.last_at,
    )
    delivery_enqueue(sent_alert=sent_alert)
    return sent_alert


@task()
def alert_incident(kind: str, event_id: int, run_id: int | None = None) -> int:
    """Evaluate one incident against the alert rules; how many alerts it queued."""
    return len(incident_evaluate(kind=kind, event_id=event_id, run_id=run_id))


def digest_send(*, day: date | None = None) -> list[SentAlert]:
    """Queue each daily-digest rule's message for ``day`` (yesterday), once per rule and day."""
    day = day or timezone.localdate() - timedelta(days=1)
    start, end = day_bounds(day)
    queued: list[SentAlert] = []
    for rule in digest_rules():
        counts = submission_counts(rule=rule, day=day)
        key = f"new_submission_digest:{day.isoformat()}"
        with transaction.atomic():
            if not alert_state_claim_once(rule=rule, key=key, at=end):
                continue  # already sent for that day
            for recipient in rule.recipients.all():
                message = digest_message(
                    rule=rule,
                    day=day,
                    counts=counts,
                    channel=recipient.channel,
                    start=start,
                    end=end,
                )
                sent_alert = sent_alert_create(
                    rule=rule,
                    recipient=recipient,
                    kind=AlertKind.NEW_SUBMISSION,
                    key=key,
                    message=message,
                    count=sum(n for _, _, n in counts),
                    first_at=start,
                    last_at=end,
                )
                delivery_enqueue(sent_alert=sent_alert)
                queued.append(sent_alert)
    return queued


@task()
def send_alert_digests(day: str | None = None) -> int:
    """The daily digest for ``day`` (ISO date; yesterday by default); how many messages it queued."""
    return len(digest_send(day=date.fromisoformat(day) if day else None))
