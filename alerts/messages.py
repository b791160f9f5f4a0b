"""What an alert says: a subject, a text, a link to the filtered admin list, a JSON summary.

Messages name the bot, the handler, the time and the count, and link to the
admin list that shows the deliveries; they never carry a secret, a token, a
body or an answer (a new-submission alert names the form, not what was typed).
The same message is built once per channel: in a webhook's text, the names
it quotes have ``&``, ``<`` and ``>`` escaped (Slack's markup); an email's is
plain.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone

from alerts.conf import alert_settings
from alerts.models import AlertKind, AlertRule, Channel
from handlers.registry import registry
from submissions.conf import webhook_settings
from submissions.models import Bot


@dataclass(frozen=True, slots=True)
class Incident:
    """One thing that happened, as the worker read it back from the database."""

    kind: str
    bot: Bot
    handler_name: str
    at: datetime
    event_id: int
    #: The exception's class (failing handler, dead follow-up), never its text.
    error_type: str = ""
    #: Rejected tokens: deliveries refused in the window, per error code.
    token_errors: dict[str, int] = field(default_factory=dict)
    #: Follow-up tries made before it was declared dead.
    tries: int = 0

    @property
    def key(self) -> str:
        """What one alert window is kept per: the kind, the bot and (but for tokens) the handler."""
        if self.kind == AlertKind.REJECTED_TOKENS:
            return f"{self.kind}:{self.bot.slug}"
        return f"{self.kind}:{self.bot.slug}:{self.handler_name}"


@dataclass(frozen=True, slots=True)
class Claim:
    """The rate limiter's answer for an incident that may send: what the alert reports."""

    #: Incidents the alert reports: this one and those held back since the last alert.
    count: int
    first_at: datetime
    last_at: datetime
    previous_sent_at: datetime | None

    @property
    def held_back(self) -> int:
        return self.count - 1


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str
    url: str
    alert: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON: ``text`` is what Slack and Teams incoming webhooks show."""
        return {
            "text": f"*{slack_escape(self.subject)}*\n{self.text}",
            "alert": self.alert,
        }


def _plain(text: str) -> str:
    return text


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shown(text: str, *, limit: int = 100) -> str:
    """Text from outside (a handler name) as one printable, quoted, bounded line."""
    cut = text if len(text) <= limit else text[:limit] + "…"
    return repr(cut)


def one_line(text: str, *, limit: int = 200) -> str:
    """A name staff typed (a bot's), printable on one line."""
    cleaned = "".join(c if c.isprintable() else " " for c in text).strip()
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "…"


def when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


def minutes(window: timedelta) -> str:
    n = int(window.total_seconds() // 60)
    return "1 minute" if n == 1 else f"{n} minutes"


def admin_url(view: str, params: dict[str, Any]) -> str:
    """An absolute link to an admin list, from ``WEBHOOKS['PUBLIC_BASE_URL']``."""
    query = urlencode(sorted((k, str(v)) for k, v in params.items()))
    return f"{webhook_settings().public_base_url}{reverse(view)}?{query}"


def incident_url(incident: Incident) -> str:
    bot_id = incident.bot.pk
    match incident.kind:
        case AlertKind.HANDLER_FAILING:
            return admin_url(
                "admin:submissions_webhookevent_changelist",
                {
                    "bot__id__exact": bot_id,
                    "handler_name": incident.handler_name,
                    "status__exact": "failed",
                },
            )
        case AlertKind.UNKNOWN_HANDLER:
            return admin_url(
                "admin:submissions_webhookevent_changelist",
                {
                    "bot__id__exact": bot_id,
                    "handler_name": incident.handler_name,
                    "status__exact": "unrouted",
                },
            )
        case AlertKind.REJECTED_TOKENS:
            return admin_url(
                "admin:submissions_webhookevent_changelist",
                {"bot__id__exact": bot_id, "status__exact": "rejected"},
            )
        case AlertKind.FOLLOW_UP_DEAD:
            return admin_url(
                "admin:submissions_handlerrun_changelist",
                {"handler_name": incident.handler_name, "outcome__exact": "dead"},
            )
        case _:
            return admin_url(
                "admin:submissions_formsubmission_changelist",
                {"bot__id__exact": bot_id, "handler_name": incident.handler_name},
            )


NOUNS = {
    AlertKind.HANDLER_FAILING: "failures",
    AlertKind.UNKNOWN_HANDLER: "deliveries for it",
    AlertKind.FOLLOW_UP_DEAD: "dead follow-ups",
    AlertKind.REJECTED_TOKENS: "rejected deliveries",
    AlertKind.NEW_SUBMISSION: "submissions",
}


def incident_message(
    *, incident: Incident, rule: AlertRule, claim: Claim, channel: str
) -> Message:
    """The alert for ``incident`` under ``rule``, for one channel."""
    q = slack_escape if channel == Channel.WEBHOOK else _plain
    bot = f"{one_line(incident.bot.name)} ({incident.bot.slug})"
    handler = shown(incident.handler_name)
    at = when(incident.at)
    url = incident_url(incident)
    lines: list[str]
    match incident.kind:
        case AlertKind.HANDLER_FAILING:
            subject = f"Handler {handler} is failing on {one_line(incident.bot.name)}"
            raised = f" ({incident.error_type})" if incident.error_type else ""
            lines = [
                f"The handler {q(handler)} on bot {q(bot)} failed at {at}{q(raised)}. "
                "The delivery and its answers are stored; replay it after a fix."
            ]
            link = "Failed deliveries"
        case AlertKind.UNKNOWN_HANDLER:
            subject = f"Deliveries for an unknown handler {handler} on {one_line(incident.bot.name)}"
            close = difflib.get_close_matches(
                incident.handler_name, registry.names(), n=1
            )
            hint = f" Did you mean {shown(close[0])}?" if close else ""
            lines = [
                f"Bot {q(bot)} sent a delivery for the handler {q(handler)} at {at}, "
                f"and no handler is registered under that name.{q(hint)} The delivery "
                "is stored and can be replayed once the handler exists."
            ]
            link = "Unrouted deliveries"
        case AlertKind.FOLLOW_UP_DEAD:
            subject = f"Follow-up work of {handler} failed for good on {one_line(incident.bot.name)}"
            raised = f" ({incident.error_type})" if incident.error_type else ""
            tries = f" after {incident.tries} tries" if incident.tries > 1 else ""
            lines = [
                f"The follow-up work of handler {q(handler)} for event "
                f"#{incident.event_id} on bot {q(bot)} failed for good at {at}"
                f"{tries}{q(raised)}. Replay the event after a fix."
            ]
            link = "Dead follow-ups"
        case AlertKind.REJECTED_TOKENS:
            total = sum(incident.token_errors.values())
            subject = (
                f"{total} deliveries to {one_line(incident.bot.name)} rejected for "
                f"their token in {minutes(rule.window)}"
            )
            codes = ", ".join(
                f"{code} ({n})" for code, n in incident.token_errors.items()
            )
            lines = [
                f"{total} deliveries to bot {q(bot)} were refused for their bearer "
                f"token within {minutes(rule.window)}, the last at {at}: {codes}.",
                "This usually means a secret mismatch after a rotation: the JWT "
                "secret under Settings → Webhook in logicdialog and the bot's secret "
                "here differ. Give both sides the same secret (keep the old one as "
                "the bot's previous secret while logicdialog switches).",
            ]
            link = "Rejected deliveries"
        case _:
            subject = f"New submission of {handler} on {one_line(incident.bot.name)}"
            lines = [
                f"A new submission of the form {q(handler)} reached bot {q(bot)} at {at}."
            ]
            link = "Submissions"
    if claim.held_back:
        since = f" at {when(claim.previous_sent_at)}" if claim.previous_sent_at else ""
        lines.append(
            f"{claim.held_back} more {NOUNS[incident.kind]} since the last alert"
            f"{since}, the first at {when(claim.first_at)}."
        )
    lines += ["", f"{link}: {url}"]
    lines.append(
        f"Alert rule {q(shown(rule.name))}: at most one alert per "
        f"{minutes(rule.window)} for this "
        + ("bot." if incident.kind == AlertKind.REJECTED_TOKENS else "bot and handler.")
    )
    alert = {
        "rule": rule.name,
        "kind": incident.kind,
        "key": incident.key,
        "bot": incident.bot.slug,
        "handler": incident.handler_name,
        "event_id": incident.event_id,
        "at": incident.at.isoformat(),
        "count": claim.count,
        "held_back": claim.held_back,
        "first_at": claim.first_at.isoformat(),
        "last_at": claim.last_at.isoformat(),
        "url": url,
    }
    if incident.token_errors:
        alert["token_errors"] = incident.token_errors
    return Message(
        subject=(alert_settings().subject_prefix + subject)[:255],
        text="\n".join(lines),
        url=url,
        alert=alert,
    )


def digest_message(
    *,
    rule: AlertRule,
    day: date,
    counts: list[tuple[str, str, int]],
    channel: str,
    start: datetime,
    end: datetime,
) -> Message:
    """Yesterday's submissions per bot and form, for a daily-digest rule."""
    q = slack_escape if channel == Channel.WEBHOOK else _plain
    total = sum(n for _, _, n in counts)
    params: dict[str, Any] = {"submitted_at__gte": start, "submitted_at__lt": end}
    if rule.bot_id:
        params["bot__id__exact"] = rule.bot_id
    if rule.handler_name:
        params["handler_name"] = rule.handler_name
    url = admin_url("admin:submissions_formsubmission_changelist", params)
    lines = [
        f"{total} form submission{'s' if total != 1 else ''} on {day.isoformat()}"
        + (":" if counts else ".")
    ]
    lines += [f"- {q(one_line(bot))}, {q(shown(form))}: {n}" for bot, form, n in counts]
    lines += ["", f"Submissions: {url}"]
    lines.append(f"Alert rule {q(shown(rule.name))}: a daily digest.")
    alert = {
        "rule": rule.name,
        "kind": "new_submission_digest",
        "day": day.isoformat(),
        "count": total,
        "forms": [{"bot": bot, "form": form, "count": n} for bot, form, n in counts],
        "url": url,
    }
    return Message(
        subject=f"{alert_settings().subject_prefix}Form submissions on {day.isoformat()}: {total}",
        text="\n".join(lines),
        url=url,
        alert=alert,
    )
