"""The alerts' admin: rules with recipients; state and sent alerts are records, read-only."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from alerts.messages import Claim, Incident, incident_message, incident_url
from alerts.models import AlertKind, AlertRecipient, AlertRule, AlertState, SentAlert
from alerts.services import sent_alert_create
from submissions.models import HandlerRun
from tests.alerts.factories import AlertRecipientFactory, AlertRuleFactory
from tests.factories import FormSubmissionFactory, WebhookEventFactory

pytestmark = pytest.mark.django_db

RULES = reverse("admin:alerts_alertrule_changelist")
ADD_RULE = reverse("admin:alerts_alertrule_add")
SENT = reverse("admin:alerts_sentalert_changelist")
STATES = reverse("admin:alerts_alertstate_changelist")


@pytest.fixture
def sent_alert(bot) -> SentAlert:
    rule = AlertRuleFactory(name="Handler failures", bot=bot)
    recipient = AlertRecipientFactory(rule=rule, target="ops@example.com")
    now = timezone.now()
    incident = Incident(
        kind=AlertKind.HANDLER_FAILING,
        bot=bot,
        handler_name="save-form",
        at=now,
        event_id=1,
        error_type="RuntimeError",
    )
    message = incident_message(
        incident=incident,
        rule=rule,
        claim=Claim(count=1, first_at=now, last_at=now, previous_sent_at=None),
        channel=recipient.channel,
    )
    AlertState.objects.create(rule=rule, key=incident.key, window_started_at=now)
    return sent_alert_create(
        rule=rule,
        recipient=recipient,
        kind=incident.kind,
        key=incident.key,
        message=message,
        count=1,
        first_at=now,
        last_at=now,
    )


def rule_form(**overrides):
    data = {
        "name": "Handler failures",
        "kind": "handler_failing",
        "enabled": "on",
        "bot": "",
        "handler_name": "",
        "window_minutes": "",
        "threshold": "",
        "recipients-TOTAL_FORMS": "2",
        "recipients-INITIAL_FORMS": "0",
        "recipients-MIN_NUM_FORMS": "0",
        "recipients-MAX_NUM_FORMS": "1000",
        "recipients-0-channel": "email",
        "recipients-0-target": "ops@example.com",
        "recipients-1-channel": "webhook",
        "recipients-1-target": "https://hooks.slack.com/services/T0/B0/XYZ",
    }
    return {**data, **overrides}


def test_the_rule_pages_render(admin_client, sent_alert):
    rule = sent_alert.rule
    assert admin_client.get(RULES).status_code == 200
    assert admin_client.get(ADD_RULE).status_code == 200
    response = admin_client.get(
        reverse("admin:alerts_alertrule_change", args=[rule.pk])
    )
    assert response.status_code == 200
    assert b"ops@example.com" in response.content  # the recipients inline


def test_a_rule_is_added_with_its_recipients(admin_client):
    response = admin_client.post(ADD_RULE, rule_form())

    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.window, rule.effective_threshold) == (timedelta(minutes=15), 1)
    assert sorted(rule.recipients.values_list("channel", "target")) == [
        ("email", "ops@example.com"),
        ("webhook", "https://hooks.slack.com/services/T0/B0/XYZ"),
    ]
    shown = {r.shown for r in AlertRecipient.objects.all()}
    assert shown == {"ops@example.com", "https://hooks.slack.com/…"}


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"recipients-0-target": "not an address"}, "Enter a valid email address."),
        ({"recipients-1-target": "file:///etc/passwd"}, "Enter a valid URL."),
        ({"daily_digest": "on"}, "Only new-submission rules can send a daily digest."),
        (
            {"kind": "rejected_tokens", "handler_name": "save-form"},
            "leave this blank for rejected tokens",
        ),
    ],
)
def test_a_rule_that_cannot_work_is_refused(admin_client, overrides, error):
    response = admin_client.post(ADD_RULE, rule_form(**overrides))

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not AlertRule.objects.exists()


def test_rejected_tokens_default_to_ten_in_five_minutes():
    rule = AlertRule(kind=AlertKind.REJECTED_TOKENS)
    assert (rule.window, rule.effective_threshold) == (timedelta(minutes=5), 10)
    rule.window_minutes, rule.threshold = 2, 4
    assert (rule.window, rule.effective_threshold) == (timedelta(minutes=2), 4)


def test_sent_alerts_are_listed_and_shown(admin_client, sent_alert):
    response = admin_client.get(SENT)
    assert response.status_code == 200
    assert (
        "Handler &#x27;save-form&#x27; is failing on Demo bot"
        in response.content.decode()
    )

    for query in (
        "?status__exact=pending",
        "?channel__exact=email",
        "?q=handler_failing:demo:save-form",
    ):
        response = admin_client.get(SENT + query)
        assert response.status_code == 200
        assert response.context["cl"].result_count == 1

    response = admin_client.get(
        reverse("admin:alerts_sentalert_change", args=[sent_alert.pk])
    )
    assert response.status_code == 200
    assert sent_alert.url.replace("&", "&amp;") in response.content.decode()


def test_sent_alerts_cannot_be_added_or_changed(admin_client, sent_alert):
    assert admin_client.get(reverse("admin:alerts_sentalert_add")).status_code == 403
    change = reverse("admin:alerts_sentalert_change", args=[sent_alert.pk])
    response = admin_client.post(change, {"subject": "edited", "status": "sent"})
    assert response.status_code == 403
    sent_alert.refresh_from_db()
    assert (sent_alert.subject, sent_alert.status) != ("edited", "sent")
    assert b'name="subject"' not in admin_client.get(change).content


def test_the_state_is_read_only(admin_client, sent_alert):
    assert admin_client.get(STATES).status_code == 200
    assert admin_client.get(reverse("admin:alerts_alertstate_add")).status_code == 403


def test_staff_need_the_view_permission(sent_alert):
    user = User.objects.create_user("staff", password="x", is_staff=True)
    client = Client()
    client.force_login(user)
    assert client.get(SENT).status_code == 403
    user.user_permissions.set(Permission.objects.filter(codename="view_sentalert"))
    assert client.get(SENT).status_code == 200


def test_the_alert_link_opens_the_filtered_list(admin_client, bot, sent_alert):
    failing = WebhookEventFactory(
        bot=bot, handler_name="save-form", status="failed", error_code="handler_error"
    )
    WebhookEventFactory(bot=bot, handler_name="save-form", status="processed")
    WebhookEventFactory(bot=bot, handler_name="division-handler", status="failed")

    path = sent_alert.url.removeprefix("https://hooks.example.com")
    response = admin_client.get(path)

    assert response.status_code == 200
    assert [e.pk for e in response.context["cl"].result_list] == [failing.pk]


def test_every_kind_of_link_opens_its_filtered_list(admin_client, bot):
    now = timezone.now()
    failed = WebhookEventFactory(bot=bot, handler_name="x", status="failed")
    unrouted = WebhookEventFactory(bot=bot, handler_name="nope", status="unrouted")
    rejected = WebhookEventFactory(bot=bot, handler_name="", status="rejected")
    submission = FormSubmissionFactory(event__bot=bot, event__handler_name="form-a")
    run = HandlerRun.objects.create(
        event=failed,
        attempt=2,
        trigger="follow_up",
        handler_name="x",
        started_at=now,
        finished_at=now,
        duration_ms=1,
        outcome="dead",
    )
    HandlerRun.objects.create(
        event=failed,
        attempt=1,
        handler_name="x",
        started_at=now,
        finished_at=now,
        duration_ms=1,
        outcome="failed",
    )
    expected = {
        (AlertKind.HANDLER_FAILING, "x"): failed.pk,
        (AlertKind.UNKNOWN_HANDLER, "nope"): unrouted.pk,
        (AlertKind.REJECTED_TOKENS, ""): rejected.pk,
        (AlertKind.FOLLOW_UP_DEAD, "x"): run.pk,
        (AlertKind.NEW_SUBMISSION, "form-a"): submission.pk,
    }
    for (kind, handler), pk in expected.items():
        incident = Incident(
            kind=kind, bot=bot, handler_name=handler, at=now, event_id=failed.pk
        )
        path = incident_url(incident).removeprefix("https://hooks.example.com")
        response = admin_client.get(path)
        assert response.status_code == 200, path
        assert [o.pk for o in response.context["cl"].result_list] == [pk], kind
