"""Sending: the outgoing webhook's timeout and retries, email failures, every attempt recorded."""

import socket

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from alerts.delivery import retry_delay_seconds, sent_alert_deliver
from alerts.models import AlertKind, SentAlert
from tests.alerts.conftest import make_due, queued_task_names, work_off_queue

pytestmark = pytest.mark.django_db(transaction=True)

UNROUTED = {"handler": "no-such-handler"}


@pytest.fixture
def alert_to(deliver, make_rule):
    """Queue one alert to ``webhook`` (and no email) and make its first attempt."""

    def send(webhook: str) -> SentAlert:
        make_rule(AlertKind.UNKNOWN_HANDLER, email=None, webhook=webhook)
        assert deliver(UNROUTED).status_code == 404
        work_off_queue()
        return SentAlert.objects.get()

    return send


def test_a_webhook_that_fails_once_is_retried_with_backoff(
    alert_to, receiver, settings
):
    settings.ALERTS = {**settings.ALERTS, "RETRY_SECONDS": 60}
    receiver.answers = [(500, 0)]

    alert = alert_to(receiver.url)

    assert (alert.status, alert.attempts) == ("retrying", 1)
    assert alert.error == "Attempt 1 of 5: HTTP 500: no_service"
    retry = DBTaskResult.objects.get(status="READY")
    assert retry.task_path == "alerts.delivery.deliver_alert"
    assert 50 < (retry.run_after - timezone.now()).total_seconds() <= 60
    work_off_queue()
    assert len(receiver.requests) == 1  # not due yet

    make_due()
    work_off_queue()

    alert.refresh_from_db()
    assert (alert.status, alert.attempts, alert.error) == ("sent", 2, "")
    assert alert.sent_at is not None
    assert [a["outcome"] for a in alert.attempt_log] == ["error", "sent"]
    assert alert.attempt_log[0]["error"] == "Attempt 1 of 5: HTTP 500: no_service"
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body == alert.payload


def test_a_webhook_that_does_not_answer_in_time_fails_after_the_last_try(
    alert_to, receiver, settings
):
    settings.ALERTS = {
        **settings.ALERTS,
        "WEBHOOK_TIMEOUT_SECONDS": 0.2,
        "MAX_ATTEMPTS": 2,
    }
    receiver.answers = [(200, 1.0), (200, 1.0)]

    alert = alert_to(receiver.url)
    assert (alert.status, alert.attempts) == ("retrying", 1)
    assert alert.error == "Attempt 1 of 2: No answer within 0.2 s."
    assert alert.attempt_log[0]["duration_ms"] < 900

    make_due()
    work_off_queue()

    alert.refresh_from_db()
    assert (alert.status, alert.attempts) == ("failed", 2)
    assert alert.error == "Attempt 2 of 2: No answer within 0.2 s."
    assert queued_task_names() == []  # no third try


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (404, "Attempt 1 of 5: HTTP 404: no_service"),
        (
            302,
            "Attempt 1 of 5: HTTP 302: no_service (a redirect: set the URL it points to).",
        ),
    ],
)
def test_an_answer_another_try_would_repeat_fails_at_once(
    alert_to, receiver, status, error
):
    receiver.answers = [(status, 0)]

    alert = alert_to(receiver.url)

    assert (alert.status, alert.attempts, alert.error) == ("failed", 1, error)
    assert queued_task_names() == []
    assert len(receiver.requests) == 1  # the redirect was not followed


def test_too_many_requests_is_retried(alert_to, receiver):
    receiver.answers = [(429, 0)]
    alert = alert_to(receiver.url)
    assert alert.status == "retrying"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_webhook_nobody_listens_on_is_retried(alert_to):
    alert = alert_to(f"http://127.0.0.1:{closed_port()}/hook")
    assert alert.status == "retrying"
    assert alert.error.startswith("Attempt 1 of 5: Could not connect: ")


def test_an_email_the_mail_server_refuses_is_retried(deliver, make_rule, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()
    settings.ALERTS = {**settings.ALERTS, "MAX_ATTEMPTS": 2}
    make_rule(AlertKind.UNKNOWN_HANDLER)
    deliver(UNROUTED)

    work_off_queue()
    make_due()
    work_off_queue()

    alert = SentAlert.objects.get()
    assert (alert.channel, alert.status, alert.attempts) == ("email", "failed", 2)
    assert alert.error.startswith("Attempt 2 of 2: ConnectionRefusedError")


def test_an_alert_whose_recipient_was_removed_fails(deliver, make_rule, receiver):
    rule = make_rule(AlertKind.UNKNOWN_HANDLER, email=None, webhook=receiver.url)
    receiver.answers = [(500, 0)]
    deliver(UNROUTED)
    work_off_queue()
    rule.recipients.all().delete()

    make_due()
    work_off_queue()

    alert = SentAlert.objects.get()
    assert (alert.status, alert.attempts) == ("failed", 2)
    assert "recipient was removed" in alert.error


def test_backoff_doubles_and_is_capped(settings):
    settings.ALERTS = {**settings.ALERTS, "RETRY_SECONDS": 30, "RETRY_MAX_SECONDS": 200}
    assert [retry_delay_seconds(n) for n in range(1, 6)] == [30, 60, 120, 200, 200]


def test_an_alert_deleted_before_it_was_sent_is_skipped(deliver, make_rule, mailoutbox):
    make_rule(AlertKind.UNKNOWN_HANDLER)
    deliver(UNROUTED)
    work_off_queue()  # evaluates, records and sends
    alert = SentAlert.objects.get()
    alert.delete()
    assert sent_alert_deliver(sent_alert_id=alert.pk) is None


def test_a_second_copy_of_a_delivery_task_sends_nothing(deliver, make_rule, mailoutbox):
    make_rule(AlertKind.UNKNOWN_HANDLER)
    deliver(UNROUTED)
    work_off_queue()
    alert = SentAlert.objects.get()

    assert sent_alert_deliver(sent_alert_id=alert.pk).attempts == 1
    assert len(mailoutbox) == 1
