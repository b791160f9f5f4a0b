"""The daily digest of new submissions: yesterday's counts per form, once per rule and day."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from alerts.models import AlertKind, SentAlert
from tests.alerts.conftest import OPS_EMAIL, work_off_queue
from tests.factories import BotFactory, bulk_submissions

pytestmark = pytest.mark.django_db(transaction=True)


def noon(days_ago: int):
    today = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


@pytest.fixture
def submissions(bot):
    other = BotFactory(slug="other", name="Other bot")
    answers = lambda i: {"email": f"user{i}@example.org"}  # noqa: E731
    bulk_submissions(
        3, bot=bot, answers=answers, handler_name="save-form", start=noon(1)
    )
    bulk_submissions(
        2, bot=bot, answers=answers, handler_name="feedback", start=noon(1)
    )
    bulk_submissions(
        4, bot=other, answers=answers, handler_name="save-form", start=noon(1)
    )
    bulk_submissions(
        5, bot=bot, answers=answers, handler_name="save-form", start=noon(0)
    )
    bulk_submissions(
        6, bot=bot, answers=answers, handler_name="save-form", start=noon(2)
    )


def digest(*args):
    call_command("send_alert_digest", *args, verbosity=0)


def test_the_digest_sends_yesterdays_counts_per_form(
    submissions, bot, make_rule, receiver, mailoutbox
):
    make_rule(AlertKind.NEW_SUBMISSION, daily_digest=True, webhook=receiver.url)
    make_rule(
        AlertKind.NEW_SUBMISSION,
        daily_digest=True,
        bot=bot,
        handler_name="feedback",
        email="forms@example.com",
    )

    digest()
    assert mailoutbox == []  # queued: the worker sends
    work_off_queue()

    day = (timezone.localdate() - timedelta(days=1)).isoformat()
    emails = {m.to[0]: m for m in mailoutbox}
    everything = emails[OPS_EMAIL]
    assert everything.subject == f"[webhooks] Form submissions on {day}: 9"
    assert (
        "- Demo bot, 'feedback': 2\n- Demo bot, 'save-form': 3\n- Other bot, 'save-form': 4"
        in everything.body
    )
    assert "example.org" not in everything.body
    feedback = emails["forms@example.com"]
    assert feedback.subject == f"[webhooks] Form submissions on {day}: 2"
    assert f"bot__id__exact={bot.pk}&handler_name=feedback" in feedback.body
    (post,) = receiver.requests
    assert post.body["alert"]["count"] == 9
    assert post.body["alert"]["forms"][0] == {
        "bot": "Demo bot",
        "form": "feedback",
        "count": 2,
    }


def test_a_second_run_for_the_same_day_sends_nothing(
    submissions, make_rule, mailoutbox
):
    make_rule(AlertKind.NEW_SUBMISSION, daily_digest=True)
    digest()
    digest()
    work_off_queue()
    assert len(mailoutbox) == 1


def test_a_given_day_and_a_day_without_submissions(submissions, make_rule, mailoutbox):
    make_rule(AlertKind.NEW_SUBMISSION, daily_digest=True)
    day = timezone.localdate() - timedelta(days=2)
    digest("--date", day.isoformat())
    digest("--date", (day - timedelta(days=1)).isoformat())
    work_off_queue()
    assert [m.subject for m in mailoutbox] == [
        f"[webhooks] Form submissions on {day.isoformat()}: 6",
        f"[webhooks] Form submissions on {(day - timedelta(days=1)).isoformat()}: 0",
    ]


def test_a_digest_rule_sends_no_alert_per_submission(deliver, make_rule, mailoutbox):
    make_rule(AlertKind.NEW_SUBMISSION, daily_digest=True)
    assert (
        deliver({"handler": "save-form", "formValues": {"q": "a"}}).status_code == 200
    )
    work_off_queue()
    assert mailoutbox == []
    assert not SentAlert.objects.exists()


def test_a_bad_date_is_refused():
    with pytest.raises(CommandError, match="--date takes a day as YYYY-MM-DD"):
        digest("--date", "yesterday")


def test_the_digest_links_to_that_days_submissions(
    submissions, make_rule, admin_client
):
    make_rule(AlertKind.NEW_SUBMISSION, daily_digest=True, handler_name="save-form")
    digest()
    alert = SentAlert.objects.get()

    response = admin_client.get(alert.url.removeprefix("https://hooks.example.com"))

    assert response.status_code == 200
    assert response.context["cl"].result_count == 7  # 3 + 4 yesterday, on both bots
