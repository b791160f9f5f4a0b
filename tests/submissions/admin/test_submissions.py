"""The submissions' admin: the list, answers, search, CSV export."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from submissions.exports import BOM
from submissions.selectors import search
from tests.factories import (
    FormAnswerFactory,
    FormSubmissionFactory,
    bulk_submissions,
    submission_with_answers,
)
from tests.spreadsheets import downloaded, typed, values, workbook
from tests.submissions.admin.helpers import (
    EXPORT,
    EXPORT_EXCEL,
    EXPORT_XLSX,
    SUBMISSIONS,
    count_queries,
    event_url,
    parse_csv,
    streamed,
    submission_url,
)

pytestmark = pytest.mark.django_db


# --- bots ------------------------------------------------------------------------


# --- events ----------------------------------------------------------------------


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


class TestXLSXExportFromTheAdmin:
    def test_export_selected(self, admin_client, bot):
        first = submission_with_answers(
            {"zip": "01234", "note": "=1+1", "n": 42}, event__bot=bot
        )
        second = submission_with_answers({"zip": "75001", "n": 2.5}, event__bot=bot)
        submission_with_answers({"zip": "not selected"}, event__bot=bot)

        response = admin_client.post(
            SUBMISSIONS,
            {"action": "export_as_xlsx", "_selected_action": [first.pk, second.pk]},
        )

        sheet = workbook(downloaded(response)).active
        assert response["Content-Disposition"].startswith(
            'attachment; filename="submissions-'
        )
        assert response["Content-Disposition"].endswith('.xlsx"')
        assert values(sheet)[0][6:] == ["zip", "note", "n"]
        assert [row[0] for row in values(sheet)[1:]] == [first.pk, second.pk]
        assert typed(sheet, 2)[6:] == [("s", "01234"), ("s", "'=1+1"), ("n", 42)]
        assert typed(sheet, 3)[6:] == [("s", "75001"), ("n", None), ("n", 2.5)]
        assert sheet.freeze_panes == "A2"

    def test_export_everything_matching_filters_and_search(self, admin_client, bot):
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        keep = submission_with_answers(
            {"city": "Oslo"}, event__bot=bot, event__received_at=t0
        )
        submission_with_answers({"city": "Bergen"}, event__bot=bot)
        submission_with_answers(
            {"city": "Oslo"}, event__bot=bot, event__handler_name="division-handler"
        )

        response = admin_client.get(
            EXPORT_XLSX, {"handler_name": "save-form", "q": "oslo"}
        )

        rows = values(workbook(downloaded(response)).active)
        assert [row[0] for row in rows[1:]] == [keep.pk]
        assert rows[1][1] == datetime(2025, 1, 1)  # received_at, UTC
        assert "save-form" in response["Content-Disposition"]

    def test_the_changelist_links_to_the_filtered_xlsx_export(self, admin_client, bot):
        content = admin_client.get(
            SUBMISSIONS, {"handler_name": "save-form"}
        ).content.decode()

        assert f'href="{EXPORT_XLSX}?handler_name=save-form"' in content
        assert "Export selected to XLSX" in content

    def test_bad_filter_redirects_with_the_admin_error_flag(self, admin_client):
        response = admin_client.get(EXPORT_XLSX, {"no_such_field": "1"})

        assert response.status_code == 302
        assert response["Location"].endswith("?e=1")

    def test_staff_without_the_export_permission_cannot_export(self, staff_client, bot):
        submission = submission_with_answers({"name": "Ada"}, event__bot=bot)
        client = staff_client("view_formsubmission")

        page = client.get(SUBMISSIONS)
        action = client.post(
            SUBMISSIONS,
            {"action": "export_as_xlsx", "_selected_action": [submission.pk]},
        )

        assert "export_as_xlsx" not in page.content.decode()
        assert EXPORT_XLSX not in page.content.decode()
        assert not action.streaming
        assert client.get(EXPORT_XLSX).status_code == 403

    def test_sensitive_answers_masked_without_the_permission(self, staff_client, bot):
        submission_with_answers(
            {"email": "ada@example.com", "name": "Ada"}, event__bot=bot
        )
        client = staff_client("view_formsubmission", "export_formsubmission")

        rows = values(workbook(downloaded(client.get(EXPORT_XLSX))).active)

        assert rows[1][6:] == ["a***@example.com", "Ada"]

    def test_export_queries_do_not_grow_with_rows(self, admin_client, bot):
        bulk_submissions(3, bot=bot, answers=lambda i: {"a": i})
        with CaptureQueriesContext(connection) as few:
            downloaded(admin_client.get(EXPORT_XLSX))

        bulk_submissions(300, bot=bot, answers=lambda i: {"a": i, "b": str(i)})
        with CaptureQueriesContext(connection) as many:
            rows = values(workbook(downloaded(admin_client.get(EXPORT_XLSX))).active)

        assert len(rows) == 304
        assert len(many) == len(few)  # one chunk either way (1000 per chunk)


class TestCommonWordSearch:
    def test_a_common_word_walks_the_newest_submissions(
        self, monkeypatch, admin_client, bot
    ):
        monkeypatch.setattr(search, "table_row_estimate", lambda **kwargs: 10)
        monkeypatch.setattr(search, "common_threshold", lambda submissions: 3)
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
            walk = next(sql for sql in page if "OFFSET 0" in sql.upper())
            # Each probe names the submission's month: one partition's index.
            assert (
                '."received_at" = ("submissions_formsubmission"."received_at")' in walk
            )

    def test_a_word_in_many_of_the_newest_is_walked_for_without_counting_matches(
        self, monkeypatch, admin_client, bot
    ):
        monkeypatch.setattr(search, "table_row_estimate", lambda **kwargs: 10)
        monkeypatch.setattr(search, "COMMON_SAMPLE", 4)
        counted = []
        monkeypatch.setattr(search, "common_threshold", counted.append)
        made = bulk_submissions(
            6,
            bot=bot,
            answers=lambda i: {"note": "an invoice" if i % 2 else "a receipt"},
        )

        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(SUBMISSIONS, {"q": "invoice"})

        found = {s.pk for s in response.context["cl"].result_list}
        assert found == {made[1].pk, made[3].pk, made[5].pk}
        # On PostgreSQL two of the newest four match: walked for at once,
        # its matches never counted up to the threshold.
        assert counted == []
        walked = any("OFFSET 0" in q["sql"].upper() for q in queries)
        assert walked == (connection.vendor == "postgresql")

    def test_common_is_where_walking_and_collecting_cost_the_same(self):
        assert search.common_threshold(10_000_000) == 31_622
        assert search.common_threshold(1_000_000) == 10_000
        assert search.common_threshold(0) == 1

    def test_a_rare_word_collects_its_matches(self, monkeypatch, admin_client, bot):
        monkeypatch.setattr(search, "table_row_estimate", lambda **kwargs: 1_000_000)
        made = bulk_submissions(
            4, bot=bot, answers=lambda i: {"note": "invoice" if i == 2 else "x"}
        )

        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(SUBMISSIONS, {"q": "invoice"})

        assert [s.pk for s in response.context["cl"].result_list] == [made[2].pk]
        assert not any("OFFSET 0" in q["sql"].upper() for q in queries)
        # On PostgreSQL the matches are read once, by the test of how common
        # the term is, not again by the count and the page.
        text_reads = [
            q for q in queries if '"value_text"' in q["sql"] and " LIKE " in q["sql"]
        ]
        assert len(text_reads) == (1 if connection.vendor == "postgresql" else 2)
