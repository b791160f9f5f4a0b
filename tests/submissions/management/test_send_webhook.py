"""send_webhook: signs, posts and prints the reply; clear errors."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from submissions.models import FormAnswer, WebhookEvent


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_send_webhook_signs_posts_and_prints_the_reply(live_server, bot):
    output = run(
        "send_webhook",
        "demo",
        "division-handler",
        "-f",
        "dividend=10",
        "-f",
        "divisor=4",
        "--conversation",
        "conv-cli",
        "--url",
        f"{live_server.url}/webhooks/demo/",
    )
    assert "HTTP 200" in output
    assert "10 divided by 4 is 2.5." in output
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PROCESSED
    assert event.conversation_id == "conv-cli"
    assert event.delivery_id  # a fresh delivery id per call
    assert "body_sha256" not in event.payload
    assert list(FormAnswer.objects.values_list("key", "value")) == [
        ("dividend", "10"),
        ("divisor", "4"),
    ]


@pytest.mark.django_db(transaction=True)
def test_send_webhook_reports_an_error_reply(live_server, bot):
    url = f"{live_server.url}/webhooks/demo/"
    with pytest.raises(CommandError, match="answered 404"):
        run("send_webhook", "demo", "no-such-handler", "--url", url)


@pytest.mark.django_db
def test_send_webhook_errors_are_clear(bot):
    with pytest.raises(
        CommandError, match=r"No bot with slug 'nobody'\. Known bots: demo"
    ):
        run("send_webhook", "nobody", "h")
    with pytest.raises(CommandError, match="key=value"):
        run("send_webhook", "demo", "h", "-f", "novalue")
    with pytest.raises(CommandError, match="http"):
        run("send_webhook", "demo", "h", "--url", "file:///etc/passwd")
    with pytest.raises(CommandError, match="Could not reach"):
        run(
            "send_webhook",
            "demo",
            "h",
            "--url",
            "http://127.0.0.1:9/webhooks/demo/",
            "--timeout",
            "2",
        )
