"""Forms as tables: the forms list with hand-counted aggregates, one form's table."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from handlers import WebhookHandler, register
from submissions.models import HandlerRun, WebhookEvent
from tests.factories import BotFactory, submission_with_answers

pytestmark = pytest.mark.django_db

FORMS = reverse("admin:forms")


@pytest.fixture
def made(bot, handler_registry):
    """Hand-counted: contact has 3 (1 today, 2 in 7 days), survey 1 (old)."""

    @register
    class Contact(WebhookHandler):
        name = "contact"
        verbose_name = "Contact form"

        def handle(self, request, response):
            pass

    now = timezone.now()
    other = BotFactory(slug="other", name="Other bot")
    return {
        "old": submission_with_answers(
            {"name": "Old", "email": "old@example.com"},
            bot=bot,
            handler_name="contact",
            submitted_at=now - timedelta(days=30),
        ),
        "week": submission_with_answers(
            {"name": "Wee", "email": "wee@example.com"},
            bot=bot,
            handler_name="contact",
            submitted_at=now - timedelta(days=3),
        ),
        "today": submission_with_answers(
            {"name": "Ada", "email": "ada@example.com", "phone": "+44 20 7946 0123"},
            bot=bot,
            handler_name="contact",
            submitted_at=now - timedelta(minutes=5),
        ),
        "survey": submission_with_answers(
            {"score": 5},
            bot=other,
            handler_name="survey",
            submitted_at=now - timedelta(days=10),
        ),
    }


def table_url(bot_id: int, handler_name: str) -> str:
    return reverse("admin:form-table", args=[bot_id, handler_name])


def test_the_forms_list_counts_by_hand(admin_client, bot, made):
    response = admin_client.get(FORMS)
    page = response.content.decode()

    forms = response.context["forms"]
    summary = {f["summary"].handler_name: f for f in forms}
    contact, survey = summary["contact"]["summary"], summary["survey"]["summary"]
    assert (contact.total, contact.last_7_days, contact.today) == (3, 2, 1)
    assert (survey.total, survey.last_7_days, survey.today) == (1, 0, 0)
    assert contact.labels == ["Name", "Email", "Phone"]  # the newest submission's
    assert summary["contact"]["verbose_name"] == "Contact form"
    assert summary["contact"]["state"] == "registered"
    assert summary["survey"]["state"] == "unrouted"
    assert [f["summary"].handler_name for f in forms] == ["contact", "survey"]
    assert "Contact form" in page
    assert table_url(bot.pk, "contact") in page


def test_a_handler_whose_runs_failed_recently_is_failing(admin_client, bot, made):
    WebhookEvent.objects.filter(pk=made["week"].event_id).update(bot=bot)
    HandlerRun.objects.create(
        event=made["week"].event,
        attempt=2,
        handler_name="contact",
        started_at=timezone.now(),
        finished_at=timezone.now(),
        duration_ms=1,
        outcome=HandlerRun.Outcome.FAILED,
    )
    forms = admin_client.get(FORMS).context["forms"]
    contact = next(f for f in forms if f["summary"].handler_name == "contact")
    assert (contact["state"], contact["summary"].failing_runs) == ("failing", 1)


def test_the_forms_list_reads_a_constant_number_of_queries(admin_client, bot, made):
    with CaptureQueriesContext(connection) as few:
        admin_client.get(FORMS)
    for n in range(5):
        submission_with_answers({"x": n}, bot=BotFactory(), handler_name=f"form-{n}")
    with CaptureQueriesContext(connection) as more:
        admin_client.get(FORMS)
    assert len(more) == len(few)


def test_one_form_as_a_table_newest_first_a_column_per_question(
    admin_client, bot, made
):
    response = admin_client.get(table_url(bot.pk, "contact"))
    page = response.content.decode()

    assert [c.label for c in response.context["columns"]] == ["Name", "Email", "Phone"]
    rows = response.context["rows"]
    assert [r["submission"].pk for r in rows] == [
        made["today"].pk,
        made["week"].pk,
        made["old"].pk,
    ]
    assert rows[0]["cells"] == ["Ada", "ada@example.com", "+44 20 7946 0123"]
    assert rows[2]["cells"] == ["Old", "old@example.com", ""]
    assert (
        reverse("admin:submissions_formsubmission_change", args=[made["today"].pk])
        in page
    )
    assert "old@example.com" in page
    assert "survey" not in [c.key for c in response.context["columns"]]


def test_the_table_filters_by_date_and_text_and_exports_that_view(
    admin_client, bot, made
):
    since = (timezone.now() - timedelta(days=7)).date().isoformat()
    response = admin_client.get(
        table_url(bot.pk, "contact"), {"since": since, "q": "wee@example"}
    )

    assert [r["submission"].pk for r in response.context["rows"]] == [made["week"].pk]
    export = response.context["export_query"]
    assert f"bot__id__exact={bot.pk}" in export
    assert "handler_name=contact" in export
    assert "q=wee%40example" in export
    csv = admin_client.get(
        reverse("admin:submissions_formsubmission_export") + "?" + export
    )
    text = b"".join(csv.streaming_content).decode()
    assert "wee@example.com" in text
    assert "ada@example.com" not in text


def test_a_bad_date_is_said_not_raised(admin_client, bot, made):
    response = admin_client.get(table_url(bot.pk, "contact"), {"until": "soon"})
    assert response.status_code == 200
    assert "until: enter a date" in response.content.decode()
    assert len(response.context["rows"]) == 3


def test_the_table_masks_without_the_permission(bot, made):
    user = User.objects.create_user("reader", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_formsubmission"))
    client = Client()
    client.force_login(user)

    page = client.get(table_url(bot.pk, "contact")).content.decode()

    assert "ada@example.com" not in page
    assert "a***@example.com" in page
    assert "+44 *** *** 123" in page


def test_the_table_reads_a_constant_number_of_queries(admin_client, bot, made):
    url = table_url(bot.pk, "contact")
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    for n in range(10):
        submission_with_answers(
            {"name": f"N{n}", "email": f"n{n}@x.y", "extra": n},
            bot=bot,
            handler_name="contact",
        )
    with CaptureQueriesContext(connection) as more:
        admin_client.get(url)
    assert len(more) == len(few)


def test_pages_and_permissions(admin_client, bot, made):
    assert admin_client.get(table_url(bot.pk, "nothing-here")).status_code == 404
    anonymous = Client().get(FORMS)
    assert anonymous.status_code == 302  # to the admin login
    no_perm = User.objects.create_user("nobody", is_staff=True)
    client = Client()
    client.force_login(no_perm)
    assert client.get(FORMS).status_code == 403


def test_the_admin_index_links_the_forms_first(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert page.index(FORMS) < page.index("Webhook submissions")
