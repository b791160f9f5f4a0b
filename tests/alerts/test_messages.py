"""What an alert says, whatever a handler name or a bot name holds."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.checks import run_checks

from alerts.messages import Claim, Incident, incident_message
from alerts.models import AlertKind, AlertRule, Channel
from submissions.models import Bot

AT = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)


def message(handler_name="save-form", channel=Channel.EMAIL, claim=None, **incident):
    bot = Bot(pk=7, slug="demo", name="Demo\nbot")
    rule = AlertRule(
        name="Ops <!channel>", kind=incident.get("kind", AlertKind.UNKNOWN_HANDLER)
    )
    return incident_message(
        incident=Incident(
            **{
                "kind": AlertKind.UNKNOWN_HANDLER,
                "bot": bot,
                "handler_name": handler_name,
                "at": AT,
                "event_id": 1,
                **incident,
            }
        ),
        rule=rule,
        claim=claim or Claim(count=1, first_at=AT, last_at=AT, previous_sent_at=None),
        channel=channel,
    )


def test_a_hostile_handler_name_stays_one_quoted_line():
    shown = message("x\r\nBcc: everyone@example.com <!channel>")
    assert "\n" not in shown.subject
    assert "\r" not in shown.subject
    assert r"'x\r\nBcc: everyone@example.com <!channel>'" in shown.subject
    assert "Demo bot" in shown.subject  # the bot's name on one line too


def test_a_webhook_text_escapes_slack_markup():
    shown = message("<!channel>", channel=Channel.WEBHOOK)
    text = shown.payload()["text"]
    assert "<!channel>" not in text
    assert "&lt;!channel&gt;" in text
    assert "'Ops &lt;!channel&gt;'" in text
    assert shown.payload()["alert"]["handler"] == "<!channel>"  # data, not markup


def test_a_long_handler_name_is_cut():
    shown = message("x" * 300)
    assert len(shown.subject) < 200
    assert "x" * 100 + "…" in shown.subject


def test_the_next_alert_says_how_many_since_the_last_one():
    claim = Claim(
        count=5,
        first_at=AT + timedelta(minutes=1),
        last_at=AT + timedelta(minutes=20),
        previous_sent_at=AT,
    )
    shown = message(kind=AlertKind.HANDLER_FAILING, claim=claim)
    assert (
        "4 more failures since the last alert at 2025-05-01 10:00:00 UTC, "
        "the first at 2025-05-01 10:01:00 UTC."
    ) in shown.text
    assert shown.payload()["alert"]["count"] == 5


def test_unknown_alert_settings_are_refused(settings):
    settings.ALERTS = {**settings.ALERTS, "WINDOW_MINUTE": 10, "MAX_ATTEMPTS": 0}
    errors = {e.id: e.msg for e in run_checks()}
    assert errors["alerts.E001"] == "Unknown ALERTS setting(s): WINDOW_MINUTE."
    assert (
        errors["alerts.E002"]
        == "ALERTS['MAX_ATTEMPTS'] must be a positive number, not 0."
    )


@pytest.mark.parametrize("kind", list(AlertKind))
def test_every_kind_has_a_message_with_a_link(kind):
    shown = message(kind=kind, token_errors={"invalid_signature": 10})
    assert shown.url.startswith("https://hooks.example.com/admin/submissions/")
    assert shown.url in shown.text
