import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.core.paginator import EmptyPage
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from submissions import admin as submissions_admin
from submissions.admin import EstimatedCountPaginator
from submissions.exports import BOM
from submissions.models import Bot, FormSubmission, WebhookEvent
from submissions.selectors import table_row_estimate
from tests.factories import (
    BotFactory,
    FormAnswerFactory,
    FormSubmissionFactory,
    WebhookEventFactory,
    bulk_submissions,
    submission_with_answers,
)

pytestmark = pytest.mark.django_db

BOTS = reverse("admin:submissions_bot_changelist")
EVENTS = reverse("admin:submissions_webhookevent_changelist")
SUBMISSIONS = reverse("admin:submissions_formsubmission_changelist")
EXPORT = reverse("admin:submissions_formsubmission_export")
EXPORT_EXCEL = reverse("admin:submissions_formsubmission_export_excel")


def event_url(event: WebhookEvent) -> str:
    return reverse("admin:submissions_webhookevent_change", args=[event.pk])


def submission_url(submission: FormSubmission) -> str:
    return reverse("admin:submissions_formsubmission_change", args=[submission.pk])


def streamed(response) -> str:
    assert response.streaming, "expected a streamed response"
    return b"".join(response.streaming_content).decode("utf-8")


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix(BOM), newline="")))


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.fixture
def staff_client() -> Callable[..., Client]:
    """A client logged in as a staff user holding only ``perms`` (codenames)."""

    def make(*codenames: str) -> Client:
        user = User.objects.create_user("staff", password="x", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        client = Client()
        client.force_login(user)
        return client

    return make


# --- bots ------------------------------------------------------------------------


class TestBotAdmin:
    def test_list_shows_the_webhook_url_and_never_the_secret(self, admin_client, bot):
        response = admin_client.get(BOTS)

        content = response.content.decode()
        assert "http://testserver/webhooks/demo/" in content
        assert bot.secret not in content

    def test_searching_for_the_secret_finds_nothing(self, admin_client, bot):
        response = admin_client.get(BOTS, {"q": bot.secret})

        assert list(response.context["cl"].result_list) == []

    def test_change_page_has_url_copyable_secret_and_a_password_input(
        self, admin_client, bot
    ):
        response = admin_client.get(
            reverse("admin:submissions_bot_change", args=[bot.pk])
        )

        content = response.content.decode()
        assert 'value="http://testserver/webhooks/demo/"' in content
        assert 'id="bot-current-secret"' in content
        assert f'value="{bot.secret}"' in content  # the copy field, behind <details>
        assert '<input type="password" name="secret"' in content
        assert content.count(bot.secret) == 1  # never pre-filled in the password input

    def test_blank_secret_keeps_the_current_one(self, admin_client, bot):
        old = bot.secret
        response = admin_client.post(
            reverse("admin:submissions_bot_change", args=[bot.pk]),
            {"name": "Renamed", "slug": "demo", "is_active": "on", "secret": ""},
        )

        assert response.status_code == 302
        bot.refresh_from_db()
        assert (bot.name, bot.secret, bot.previous_secret) == ("Renamed", old, "")

    def test_a_typed_secret_replaces_it_and_the_old_one_stays_accepted(
        self, admin_client, bot
    ):
        old = bot.secret
        admin_client.post(
            reverse("admin:submissions_bot_change", args=[bot.pk]),
            {"name": bot.name, "slug": "demo", "is_active": "on", "secret": "from-ld"},
        )

        bot.refresh_from_db()
        assert (bot.secret, bot.previous_secret) == ("from-ld", old)

    def test_adding_a_bot_without_a_secret_generates_a_strong_one(self, admin_client):
        response = admin_client.post(
            reverse("admin:submissions_bot_add"),
            {"name": "New", "slug": "new", "is_active": "on", "secret": ""},
        )

        assert response.status_code == 302
        assert len(Bot.objects.get(slug="new").secret) >= 43  # 256 bits, URL-safe

    def test_rotate_secret_moves_the_current_one_and_shows_the_new_once(
        self, admin_client, bot
    ):
        old = bot.secret

        response = admin_client.post(
            BOTS, {"action": "rotate_secret", "_selected_action": [bot.pk]}
        )

        bot.refresh_from_db()
        content = response.content.decode()
        assert response.status_code == 200
        assert bot.previous_secret == old
        assert bot.secret != old
        assert len(bot.secret) >= 43
        assert f'value="{bot.secret}"' in content
        assert "http://testserver/webhooks/demo/" in content
        assert "no-store" in response["Cache-Control"]
        entry = LogEntry.objects.get(object_id=str(bot.pk))
        assert bot.secret not in entry.get_change_message()
        # Shown once: the list afterwards does not show it.
        assert bot.secret not in admin_client.get(BOTS).content.decode()

    def test_rotating_needs_the_change_permission(self, staff_client, bot):
        client = staff_client("view_bot")
        old = bot.secret

        client.post(BOTS, {"action": "rotate_secret", "_selected_action": [bot.pk]})

        bot.refresh_from_db()
        assert bot.secret == old


# --- events ----------------------------------------------------------------------


class TestWebhookEventAdmin:
    def test_list_columns(self, admin_client, bot):
        WebhookEventFactory(bot=bot, conversation_id="conv-42", duration_ms=12.34)

        response = admin_client.get(EVENTS)

        content = response.content.decode()
        for text in ("Demo bot", "save-form", "Processed", "conv-42", "12.3 ms"):
            assert text in content
        assert response.context["cl"].show_full_result_count is False

    def test_filter_by_status(self, admin_client, bot):
        failed = WebhookEventFactory(bot=bot, status=WebhookEvent.Status.FAILED)
        WebhookEventFactory(bot=bot, status=WebhookEvent.Status.PROCESSED)

        response = admin_client.get(EVENTS, {"status__exact": "failed"})

        assert list(response.context["cl"].result_list) == [failed]

    def test_filter_by_bot_handler_and_date(self, admin_client, bot):
        other = BotFactory()
        today = WebhookEventFactory(bot=bot, handler_name="division-handler")
        WebhookEventFactory(bot=other, handler_name="division-handler")
        WebhookEventFactory(bot=bot, handler_name="save-form")
        WebhookEventFactory(
            bot=bot,
            handler_name="division-handler",
            received_at=datetime(2020, 1, 1, tzinfo=UTC),
        )
        start = today.received_at.replace(hour=0, minute=0, second=0, microsecond=0)

        response = admin_client.get(
            EVENTS,
            {
                "bot__id__exact": bot.pk,
                "handler_name": "division-handler",
                "received_at__gte": str(start),
                "received_at__lt": str(start + timedelta(days=1)),
            },
        )

        assert list(response.context["cl"].result_list) == [today]

    def test_handler_filter_lists_registered_names_and_an_unknown_selected_one(
        self, admin_client
    ):
        response = admin_client.get(EVENTS, {"handler_name": "gone-handler"})

        content = response.content.decode()
        assert "division-handler" in content
        assert "save-form" in content
        assert "gone-handler" in content

    @pytest.mark.parametrize("field", ["conversation_id", "user_id", "delivery_id"])
    def test_search_by_exact_id(self, admin_client, bot, field):
        wanted = WebhookEventFactory(bot=bot, **{field: "needle-123"})
        WebhookEventFactory(bot=bot)

        response = admin_client.get(EVENTS, {"q": "needle-123"})

        assert list(response.context["cl"].result_list) == [wanted]

    def test_search_by_handler_name_and_event_number(self, admin_client, bot):
        division = WebhookEventFactory(bot=bot, handler_name="division-handler")
        other = WebhookEventFactory(bot=bot)

        by_name = admin_client.get(EVENTS, {"q": "division-handler"})
        by_number = admin_client.get(EVENTS, {"q": str(other.pk)})

        assert list(by_name.context["cl"].result_list) == [division]
        assert other in by_number.context["cl"].result_list

    def test_detail_pretty_prints_json_and_shows_text_body_and_submission(
        self, admin_client, bot
    ):
        submission = submission_with_answers({"name": "Ada"}, event__bot=bot)
        event = submission.event
        event.raw_body = b'{"handler": "save-form", "n": "\xc3\xa9t\xc3\xa9"}'
        event.save()

        response = admin_client.get(event_url(event))

        content = response.content.decode()
        assert response.status_code == 200
        assert "{\n  &quot;handler&quot;: &quot;save-form&quot;," in content  # indented
        assert "&quot;Content-Type&quot;: &quot;application/json&quot;" in content
        assert "&quot;blocks&quot;: []" in content  # the reply
        assert "été" in content  # the raw body, decoded
        assert submission_url(submission) in content
        assert "Traceback" not in content
        assert 'name="_save"' not in content  # read-only

    def test_detail_shows_binary_body_as_hex_and_the_error(self, admin_client, bot):
        event = WebhookEventFactory(
            bot=bot,
            status=WebhookEvent.Status.FAILED,
            raw_body=b"\xff\xfe\x00<script>",
            error_code="handler_error",
            error_detail="The handler raised ZeroDivisionError.",
            traceback='Traceback (most recent call last):\n  File "x.py"\nZeroDivisionError',
        )

        content = admin_client.get(event_url(event)).content.decode()

        assert "ff fe 00 3c 73 63 72 69 70 74 3e" in content
        assert "<script>" not in content
        assert "handler_error" in content
        assert "The handler raised ZeroDivisionError." in content
        assert "ZeroDivisionError" in content
        assert "Traceback (most recent call last):" in content

    def test_events_cannot_be_added_or_changed(self, admin_client, bot):
        event = WebhookEventFactory(bot=bot, handler_name="save-form")

        add = admin_client.get(reverse("admin:submissions_webhookevent_add"))
        change = admin_client.post(event_url(event), {"handler_name": "hacked"})

        event.refresh_from_db()
        assert add.status_code == 403
        assert change.status_code == 403
        assert event.handler_name == "save-form"

    def test_list_queries_do_not_grow_with_rows(self, admin_client):
        for _ in range(2):
            WebhookEventFactory()
        few = count_queries(admin_client, EVENTS)

        for _ in range(40):
            WebhookEventFactory()  # a new bot each: the list must not query per row
        many = count_queries(admin_client, EVENTS)

        assert many == few

    def test_detail_queries_do_not_grow_with_answers(self, admin_client, bot):
        small = submission_with_answers({"a": 1}, event__bot=bot)
        big = submission_with_answers({f"q{i}": i for i in range(50)}, event__bot=bot)

        assert count_queries(admin_client, event_url(big.event)) == count_queries(
            admin_client, event_url(small.event)
        )


# --- submissions -----------------------------------------------------------------


class TestFormSubmissionAdmin:
    def test_list_shows_the_first_answers(self, admin_client, bot):
        submission_with_answers(
            {"name": "Ada", "email": "ada@example.com", "age": 36, "city": "London"},
            event__bot=bot,
            event__conversation_id="conv-1",
            event__user_id="user-1",
        )

        content = admin_client.get(SUBMISSIONS).content.decode()

        for text in (
            "Demo bot",
            "save-form",
            "conv-1",
            "user-1",
            "Ada",
            "ada@example.com",
        ):
            assert text in content
        assert "London" not in content  # only the first three answers

    def test_search_across_answer_values(self, admin_client, bot):
        wanted = submission_with_answers({"city": "Reykjavík"}, event__bot=bot)
        submission_with_answers({"city": "Oslo"}, event__bot=bot)

        response = admin_client.get(SUBMISSIONS, {"q": "reykja"})

        assert list(response.context["cl"].result_list) == [wanted]

    def test_search_by_conversation_id(self, admin_client, bot):
        wanted = submission_with_answers(
            {"a": 1}, event__bot=bot, event__conversation_id="c-9"
        )
        submission_with_answers({"a": 2}, event__bot=bot)

        response = admin_client.get(SUBMISSIONS, {"q": "c-9"})

        assert list(response.context["cl"].result_list) == [wanted]

    def test_filter_by_handler(self, admin_client, bot):
        division = submission_with_answers(
            {"dividend": 1}, event__bot=bot, event__handler_name="division-handler"
        )
        submission_with_answers({"a": 1}, event__bot=bot)

        response = admin_client.get(SUBMISSIONS, {"handler_name": "division-handler"})

        assert list(response.context["cl"].result_list) == [division]

    def test_detail_shows_answers_as_a_table_and_links_to_the_event(
        self, admin_client, bot
    ):
        submission = submission_with_answers({}, event__bot=bot)
        FormAnswerFactory(
            submission=submission,
            position=0,
            key="colour",
            label="Favourite colour?",
            input_type="choice",
            value=["red", "<b>blue</b>"],
        )

        content = admin_client.get(submission_url(submission)).content.decode()

        assert (
            "<tr><td>Favourite colour?</td><td><code>colour</code></td><td>choice</td>"
            '<td style="white-space: pre-wrap">red; &lt;b&gt;blue&lt;/b&gt;</td></tr>'
        ) in content
        assert event_url(submission.event) in content

    def test_list_queries_do_not_grow_with_rows(self, admin_client):
        for _ in range(2):
            submission_with_answers({"a": 1, "b": 2})
        few = count_queries(admin_client, SUBMISSIONS)

        for _ in range(40):
            submission_with_answers({"a": 1, "b": 2, "c": 3, "d": 4})
        many = count_queries(admin_client, SUBMISSIONS)

        assert many == few

    def test_filtered_and_searched_list_queries_do_not_grow_with_rows(
        self, admin_client, bot
    ):
        url = f"{SUBMISSIONS}?bot__id__exact={bot.pk}&handler_name=save-form&q=x"
        submission_with_answers({"a": "x"}, event__bot=bot)
        few = count_queries(admin_client, url)

        bulk_submissions(60, bot=bot, answers=lambda i: {"a": "x", "b": i})

        assert count_queries(admin_client, url) == few

    def test_detail_queries_do_not_grow_with_answers(self, admin_client, bot):
        small = submission_with_answers({"a": 1}, event__bot=bot)
        big = submission_with_answers({f"q{i}": i for i in range(60)}, event__bot=bot)

        assert count_queries(admin_client, submission_url(big)) == count_queries(
            admin_client, submission_url(small)
        )


# --- export from the admin -------------------------------------------------------


class TestExportFromTheAdmin:
    def test_export_selected(self, admin_client, bot):
        first = submission_with_answers(
            {"name": "Ada, L.", "note": "=1+1"}, event__bot=bot
        )
        second = submission_with_answers({"name": "Bob", "age": -5}, event__bot=bot)
        submission_with_answers({"name": "Not selected"}, event__bot=bot)

        response = admin_client.post(
            SUBMISSIONS,
            {"action": "export_as_csv", "_selected_action": [first.pk, second.pk]},
        )

        rows = parse_csv(streamed(response))
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"].startswith(
            'attachment; filename="submissions-'
        )
        assert rows[0][6:] == ["name", "note", "age"]
        assert [row[0] for row in rows[1:]] == [str(first.pk), str(second.pk)]
        assert rows[1][6:] == ["Ada, L.", "'=1+1", ""]
        assert rows[2][6:] == ["Bob", "", "-5"]

    def test_export_selected_for_excel_starts_with_a_bom(self, admin_client, bot):
        submission = submission_with_answers({"name": "Zoë"}, event__bot=bot)

        response = admin_client.post(
            SUBMISSIONS,
            {"action": "export_as_csv_excel", "_selected_action": [submission.pk]},
        )

        text = streamed(response)
        assert text.startswith(BOM + "submission_id,")
        assert parse_csv(text)[1][6:] == ["Zoë"]

    def test_export_everything_matching_filters_and_search(self, admin_client, bot):
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        keep = submission_with_answers(
            {"city": "Oslo"}, event__bot=bot, event__received_at=t0
        )
        keep_too = submission_with_answers(
            {"city": "Oslo", "zip": "0150"},
            event__bot=bot,
            event__received_at=t0 + timedelta(hours=1),
        )
        submission_with_answers({"city": "Bergen"}, event__bot=bot)
        submission_with_answers(
            {"city": "Oslo"}, event__bot=bot, event__handler_name="division-handler"
        )

        response = admin_client.get(
            EXPORT, {"handler_name": "save-form", "q": "oslo", "p": "1"}
        )

        rows = parse_csv(streamed(response))
        assert [row[0] for row in rows[1:]] == [str(keep.pk), str(keep_too.pk)]
        assert rows[0][6:] == ["city", "zip"]
        assert "save-form" in response["Content-Disposition"]

    def test_export_everything_for_excel(self, admin_client, bot):
        submission_with_answers({"name": "Åsa"}, event__bot=bot)

        text = streamed(admin_client.get(EXPORT_EXCEL))

        assert text.startswith(BOM)
        assert parse_csv(text)[1][6:] == ["Åsa"]

    def test_bad_filter_redirects_with_the_admin_error_flag(self, admin_client):
        response = admin_client.get(EXPORT, {"no_such_field": "1"})

        assert response.status_code == 302
        assert response["Location"].endswith("?e=1")

    def test_the_changelist_links_to_the_filtered_export(self, admin_client, bot):
        content = admin_client.get(
            SUBMISSIONS, {"handler_name": "save-form"}
        ).content.decode()

        assert f'href="{EXPORT}?handler_name=save-form"' in content
        assert f'href="{EXPORT_EXCEL}?handler_name=save-form"' in content

    def test_staff_without_the_export_permission_cannot_export(self, staff_client, bot):
        submission = submission_with_answers({"name": "Ada"}, event__bot=bot)
        client = staff_client("view_formsubmission")

        page = client.get(SUBMISSIONS)
        action = client.post(
            SUBMISSIONS,
            {"action": "export_as_csv", "_selected_action": [submission.pk]},
        )
        export = client.get(EXPORT)

        assert page.status_code == 200
        assert "export_as_csv" not in page.content.decode()
        assert EXPORT not in page.content.decode()
        assert not action.streaming
        assert action.status_code in (200, 302)
        assert export.status_code == 403

    def test_staff_with_the_export_permission_can_export(self, staff_client, bot):
        submission = submission_with_answers({"name": "Ada"}, event__bot=bot)
        client = staff_client("view_formsubmission", "export_formsubmission")

        page = client.get(SUBMISSIONS)
        action = client.post(
            SUBMISSIONS,
            {"action": "export_as_csv", "_selected_action": [submission.pk]},
        )
        export = client.get(EXPORT)

        assert "export_as_csv" in page.content.decode()
        assert parse_csv(streamed(action))[1][6:] == ["Ada"]
        assert parse_csv(streamed(export))[1][6:] == ["Ada"]

    def test_export_permission_alone_is_not_enough_without_view(self, staff_client):
        client = staff_client("export_formsubmission")

        assert client.get(EXPORT).status_code == 403

    def test_anonymous_users_are_sent_to_the_login_page(self, client):
        response = client.get(EXPORT)

        assert response.status_code == 302
        assert reverse("admin:login") in response["Location"]

    def test_demo_admin_from_setup_demo_can_export(self, settings, tmp_path):
        from django.core.management import call_command

        settings.BASE_DIR = tmp_path
        call_command("setup_demo", force=True, stdout=io.StringIO())

        assert User.objects.get(username="admin").has_perm(
            "submissions.export_formsubmission"
        )

    def test_export_queries_do_not_grow_with_rows(self, admin_client, bot):
        bulk_submissions(3, bot=bot, answers=lambda i: {"a": i})
        with CaptureQueriesContext(connection) as few:
            streamed(admin_client.get(EXPORT))

        bulk_submissions(300, bot=bot, answers=lambda i: {"a": i, "b": i})
        with CaptureQueriesContext(connection) as many:
            rows = parse_csv(streamed(admin_client.get(EXPORT)))

        assert len(rows) == 304
        assert len(many) == len(few)  # one chunk either way (1000 per chunk)


# --- counting --------------------------------------------------------------------


class TestEstimatedCount:
    def test_unfiltered_list_uses_the_estimate_for_a_big_table(self, monkeypatch, bot):
        monkeypatch.setattr(
            submissions_admin, "table_row_estimate", lambda **kwargs: 3_000_000
        )
        WebhookEventFactory(bot=bot)

        with CaptureQueriesContext(connection) as queries:
            count = EstimatedCountPaginator(WebhookEvent.objects.all(), 100).count

        assert count == 3_000_000
        assert not any("COUNT(" in q["sql"].upper() for q in queries)

    def test_filtered_and_small_lists_count_exactly(self, monkeypatch, bot):
        WebhookEventFactory(bot=bot, status=WebhookEvent.Status.FAILED)
        WebhookEventFactory(bot=bot)
        monkeypatch.setattr(
            submissions_admin, "table_row_estimate", lambda **kwargs: 3_000_000
        )
        filtered = WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED)

        assert EstimatedCountPaginator(filtered, 100).count == 1

        monkeypatch.setattr(
            submissions_admin, "table_row_estimate", lambda **kwargs: 10
        )
        assert EstimatedCountPaginator(WebhookEvent.objects.all(), 100).count == 2

    def test_the_estimate_comes_from_postgresql_only(self):
        estimate = table_row_estimate(model=WebhookEvent)

        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE submissions_webhookevent")
            assert isinstance(table_row_estimate(model=WebhookEvent), int)
        else:
            assert estimate is None

    def test_the_changelist_never_counts_the_whole_table(self, admin_client, bot):
        WebhookEventFactory(bot=bot, status=WebhookEvent.Status.FAILED)

        with CaptureQueriesContext(connection) as queries:
            admin_client.get(EVENTS, {"status__exact": "failed"})

        counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
        assert len(counts) == 1  # the filtered count, never the full one
        assert "status" in counts[0]


class TestCappedCount:
    @pytest.fixture
    def cap_at_3(self, monkeypatch):
        monkeypatch.setattr(EstimatedCountPaginator, "count_cap", 3)
        monkeypatch.setattr(submissions_admin.FormSubmissionAdmin, "list_per_page", 2)

    def test_a_big_filtered_list_is_counted_up_to_the_cap(self, cap_at_3, bot):
        bulk_submissions(5, bot=bot, answers=lambda i: {"a": i})
        filtered = FormSubmission.objects.filter(bot=bot).order_by("-submitted_at")

        with CaptureQueriesContext(connection) as queries:
            paginator = EstimatedCountPaginator(filtered, 2)
            count = paginator.count

        assert count == 3
        assert str(count) == "3+"
        assert paginator.capped
        assert "LIMIT 4" in queries[0]["sql"].upper()
        # Pages past the cap still open, with the rows that are there.
        assert [s.pk for s in paginator.page(3).object_list] == [
            s.pk for s in filtered[4:6]
        ]

    def test_a_list_within_the_cap_is_exact(self, cap_at_3, bot):
        bulk_submissions(3, bot=bot, answers=lambda i: {"a": i})
        paginator = EstimatedCountPaginator(FormSubmission.objects.filter(bot=bot), 2)

        assert paginator.count == 3
        assert str(paginator.count) == "3"
        assert not paginator.capped
        with pytest.raises(EmptyPage):
            paginator.page(3)

    def test_the_changelist_says_capped_counts_honestly_and_pages_work(
        self, cap_at_3, admin_client, bot
    ):
        made = bulk_submissions(7, bot=bot, answers=lambda i: {"note": f"invoice {i}"})
        newest_first = sorted(made, key=lambda s: s.submitted_at, reverse=True)

        first = admin_client.get(SUBMISSIONS, {"q": "invoice"})
        beyond = admin_client.get(SUBMISSIONS, {"q": "invoice", "p": "4"})

        text = first.content.decode()
        assert "3+ results" in text
        assert "3+ form submissions" in text
        assert "?p=2&amp;q=invoice" in text  # the page links
        assert [s.pk for s in first.context["cl"].result_list] == [
            s.pk for s in newest_first[:2]
        ]
        assert beyond.status_code == 200
        assert [s.pk for s in beyond.context["cl"].result_list] == [newest_first[6].pk]


class TestCommonWordSearch:
    def test_a_common_word_walks_the_newest_submissions(
        self, monkeypatch, admin_client, bot
    ):
        monkeypatch.setattr(
            submissions_admin, "table_row_estimate", lambda **kwargs: 10
        )
        made = bulk_submissions(
            6,
            bot=bot,
            answers=lambda i: {"note": "an invoice" if i % 2 else "a receipt"},
        )
        other = FormSubmissionFactory(event__bot=bot, conversation_id="invoice")

        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(SUBMISSIONS, {"q": "invoice"})

        found = {s.pk for s in response.context["cl"].result_list}
        assert found == {made[1].pk, made[3].pk, made[5].pk, other.pk}
        page = [q["sql"] for q in queries if "ORDER BY" in q["sql"].upper()]
        uses_walk = any("EXISTS" in sql.upper() for sql in page)
        # The walk only on PostgreSQL, where OFFSET 0 steers the planner.
        assert uses_walk == (connection.vendor == "postgresql")
        if uses_walk:
            assert any("OFFSET 0" in sql.upper() for sql in page)

    def test_a_rare_word_collects_its_matches(self, monkeypatch, admin_client, bot):
        monkeypatch.setattr(
            submissions_admin, "table_row_estimate", lambda **kwargs: 1_000_000
        )
        made = bulk_submissions(
            4, bot=bot, answers=lambda i: {"note": "invoice" if i == 2 else "x"}
        )

        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(SUBMISSIONS, {"q": "invoice"})

        assert [s.pk for s in response.context["cl"].result_list] == [made[2].pk]
        assert not any("OFFSET 0" in q["sql"].upper() for q in queries)
