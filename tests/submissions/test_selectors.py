"""Selectors: the export's columns and rows, read from the database."""

import csv
import io
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from submissions.exports import (
    BOM,
    ExportColumn,
    ExportOptions,
    ExportSubmission,
    csv_chunks,
    csv_rows,
)
from submissions.selectors.console import overview
from submissions.selectors.exports import (
    submission_export_columns,
    submission_export_iter,
    submission_export_queryset,
)
from tests.factories import (
    BotFactory,
    FormAnswerFactory,
    FormSubmissionFactory,
    WebhookEventFactory,
    bulk_submissions,
    submission_with_answers,
)

WHEN = datetime(2025, 3, 1, 12, 30, 5, tzinfo=UTC)


def sub(answers: dict[str, Any], pk: int = 1, **fields: Any) -> ExportSubmission:
    defaults: dict[str, Any] = {
        "id": pk,
        "submitted_at": WHEN,
        "bot": "demo",
        "handler_name": "save-form",
        "conversation_id": "c-1",
        "user_id": "u-1",
    }
    return ExportSubmission(**{**defaults, **fields}, answers=answers)


def cols(*keys: str) -> list[ExportColumn]:
    return [ExportColumn(key=key, label=key.title()) for key in keys]


def export_text(
    columns: list[ExportColumn],
    submissions: list[ExportSubmission],
    options: ExportOptions | None = None,
) -> str:
    options = options or ExportOptions()
    rows = csv_rows(columns=columns, submissions=submissions, options=options)
    return "".join(csv_chunks(rows, excel=options.excel))


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix(BOM), newline="")))


# --- the pure row generator -------------------------------------------------------


@pytest.mark.django_db
class TestFromTheDatabase:
    def test_columns_are_the_union_of_keys_in_first_seen_order(self):
        bot = BotFactory()
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        # Created out of time order: first-seen follows received time, not ids.
        submission_with_answers(
            {"c": 1, "a": 2}, event__bot=bot, event__received_at=t0 + timedelta(hours=2)
        )
        submission_with_answers({"a": 1, "b": 2}, event__bot=bot, event__received_at=t0)
        submission_with_answers(
            {"b": 1, "d": 2}, event__bot=bot, event__received_at=t0 + timedelta(hours=3)
        )

        columns = submission_export_columns(submissions=submission_export_queryset())

        assert [column.key for column in columns] == ["a", "b", "c", "d"]

    def test_renamed_and_removed_questions_keep_their_columns(self):
        bot = BotFactory()
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        old = submission_with_answers(
            {"name": "Ada", "email": "ada@example.com", "phone": "1"},
            event__bot=bot,
            event__received_at=t0,
        )
        new = submission_with_answers(
            {"name": "Bob", "email_address": "bob@example.com"},
            event__bot=bot,
            event__received_at=t0 + timedelta(days=30),
        )
        queryset = submission_export_queryset(bot=bot)

        columns = submission_export_columns(submissions=queryset)
        rows = list(
            csv_rows(
                columns=columns,
                submissions=submission_export_iter(submissions=queryset),
            )
        )

        assert rows[0][6:] == ["name", "email", "phone", "email_address"]
        assert rows[1][0] == str(old.pk)
        assert rows[1][6:] == ["Ada", "ada@example.com", "1", ""]
        assert rows[2][0] == str(new.pk)
        assert rows[2][6:] == ["Bob", "", "", "bob@example.com"]

    def test_a_relabelled_question_is_headed_by_its_latest_label(self):
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        first = FormSubmissionFactory(event__received_at=t0)
        later = FormSubmissionFactory(event__received_at=t0 + timedelta(days=1))
        FormAnswerFactory(
            submission=first,
            position=0,
            key="q1",
            label="Your name?",
            input_type="text",
        )
        FormAnswerFactory(
            submission=later, position=0, key="q1", label="Full name", input_type="name"
        )

        columns = submission_export_columns(submissions=submission_export_queryset())

        # The latest label and question type head the column.
        assert columns == [ExportColumn(key="q1", label="Full name", input_type="name")]

    def test_equal_times_order_columns_by_id_then_position_and_label_by_latest(self):
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        # Three submissions at one moment, one later; the tie-breaks are the
        # export's row order: (submitted_at, id, position).
        a = FormSubmissionFactory(event__received_at=t0)
        b = FormSubmissionFactory(event__received_at=t0)
        c = FormSubmissionFactory(event__received_at=t0)
        later = FormSubmissionFactory(event__received_at=t0 + timedelta(seconds=1))
        FormAnswerFactory(submission=b, position=0, key="y", label="Y from b")
        FormAnswerFactory(submission=b, position=1, key="x", label="X from b")
        FormAnswerFactory(submission=a, position=3, key="z", label="Z from a")
        FormAnswerFactory(submission=a, position=5, key="x", label="X from a")
        FormAnswerFactory(submission=c, position=0, key="z", label="Z from c")
        FormAnswerFactory(submission=c, position=1, key="z", label="Z again in c")
        FormAnswerFactory(submission=later, position=0, key="w", label="")

        columns = submission_export_columns(submissions=submission_export_queryset())

        assert columns == [
            ExportColumn(key="z", label="Z again in c", input_type="text"),
            ExportColumn(key="x", label="X from b", input_type="text"),
            ExportColumn(key="y", label="Y from b", input_type="text"),
            ExportColumn(key="w", label="", input_type="text"),
        ]

    def test_columns_of_a_filtered_set_ignore_other_submissions(self):
        demo, other = BotFactory(), BotFactory()
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        submission_with_answers({"mine": 1}, event__bot=demo, event__received_at=t0)
        submission_with_answers({"theirs": 1}, event__bot=other, event__received_at=t0)

        assert submission_export_columns(
            submissions=submission_export_queryset(bot=demo)
        ) == [ExportColumn(key="mine", label="Mine", input_type="text")]
        assert (
            submission_export_columns(
                submissions=submission_export_queryset(handler_name="nobody")
            )
            == []
        )

    def test_every_json_type_comes_back_as_stored(self):
        values = {
            "text": 'héllo, "world"',
            "empty": "",
            "int": 7,
            "negative": -5,
            "float": 1.5,
            "true": True,
            "false": False,
            "null": None,
            "list": ["a", 2, None],
            "object": {"b": [1, {"c": "d"}]},
            "quoted_number": "12",
            "json_looking": '{"not": "parsed"}',
        }
        submission_with_answers(values)

        (row,) = submission_export_iter(submissions=submission_export_queryset())

        assert row.answers == values
        assert {key: type(value) for key, value in row.answers.items()} == {
            key: type(value) for key, value in values.items()
        }

    def test_filters_by_bot_handler_and_time(self):
        demo, other = BotFactory(), BotFactory()
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        keep = submission_with_answers(
            {"a": 1}, event__bot=demo, event__received_at=t0 + timedelta(hours=1)
        )
        submission_with_answers({"a": 2}, event__bot=other, event__received_at=t0)
        submission_with_answers(
            {"a": 3},
            event__bot=demo,
            event__handler_name="other",
            event__received_at=t0,
        )
        submission_with_answers(
            {"a": 4}, event__bot=demo, event__received_at=t0 + timedelta(days=2)
        )

        queryset = submission_export_queryset(
            bot=demo,
            handler_name="save-form",
            since=t0,
            until=t0 + timedelta(days=1),
        )

        assert [s.id for s in submission_export_iter(submissions=queryset)] == [keep.pk]

    def test_answers_repeating_a_key_keep_every_value(self):
        submission = FormSubmissionFactory()
        FormAnswerFactory(submission=submission, position=0, key="pet", value="cat")
        FormAnswerFactory(
            submission=submission, position=1, key="pet", value=["dog", "fox"]
        )

        (row,) = submission_export_iter(submissions=submission_export_queryset())

        assert row.answers == {"pet": ["cat", "dog", "fox"]}

    def test_thousands_stream_in_order_in_a_bounded_number_of_queries(self):
        bot = BotFactory()
        count, chunk = 2500, 500
        bulk_submissions(count, bot=bot, answers=lambda i: {"n": i, "note": f"#{i}"})
        queryset = submission_export_queryset(bot=bot)

        with CaptureQueriesContext(connection) as queries:
            exported = list(
                submission_export_iter(submissions=queryset, chunk_size=chunk)
            )

        assert [row.answers["n"] for row in exported] == list(range(count))
        assert len({row.id for row in exported}) == count
        # Two queries (submissions, their answers) per full chunk, one to find
        # the end: memory holds one chunk, whatever the export's size.
        assert len(queries) == 2 * math.ceil(count / chunk) + 1

    @pytest.mark.parametrize("other_between", [1, 30])
    def test_a_filtered_export_gets_each_submission_its_own_answers(
        self, other_between
    ):
        """Another handler's submissions between the exported ones: a few (the
        chunk's ids read as a range, the neighbours skipped) or many (read
        as a list of ids)."""
        bot = BotFactory()
        start = timezone.now() - timedelta(days=1)
        wanted = []
        for n in range(12):
            at = start + timedelta(minutes=n)
            wanted += bulk_submissions(
                1, bot=bot, answers=lambda i, n=n: {"n": n}, start=at
            )
            bulk_submissions(
                other_between,
                bot=bot,
                handler_name="other",
                answers=lambda i: {"n": -1, "other": "x"},
                start=at + timedelta(seconds=1),
            )
        queryset = submission_export_queryset(handler_name="save-form")

        exported = list(submission_export_iter(submissions=queryset, chunk_size=5))

        assert [row.id for row in exported] == [s.pk for s in wanted]
        assert [row.answers for row in exported] == [{"n": n} for n in range(12)]

    def test_keyset_pagination_survives_equal_timestamps(self):
        bot = BotFactory()
        made = bulk_submissions(
            25, bot=bot, answers=lambda i: {"n": i}, step=timedelta(0)
        )

        exported = list(
            submission_export_iter(
                submissions=submission_export_queryset(), chunk_size=4
            )
        )

        assert [row.id for row in exported] == sorted(s.pk for s in made)

    def test_the_whole_export_parses_back(self):
        bot = BotFactory()
        bulk_submissions(
            1200,
            bot=bot,
            answers=lambda i: (
                {"text": f'line "{i}",\nnext', "n": -i}
                if i % 2
                else {"n": -i, "extra": "=cmd"}
            ),
        )
        queryset = submission_export_queryset(bot=bot)
        columns = submission_export_columns(submissions=queryset)

        text = "".join(
            csv_chunks(
                csv_rows(
                    columns=columns,
                    submissions=submission_export_iter(
                        submissions=queryset, chunk_size=100
                    ),
                ),
                excel=True,
            )
        )
        rows = parse(text)

        assert rows[0][6:] == ["n", "extra", "text"]
        assert len(rows) == 1201
        assert rows[1][6:] == ["0", "'=cmd", ""]
        assert rows[2][6:] == ["-1", "", 'line "1",\nnext']


# --- the overview's days -----------------------------------------------------------


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.django_db
class TestOverviewDays:
    """Days run from midnight to midnight in the site's time zone."""

    # London left summer time at 01:00 UTC on 2026-10-25: that day had 25 hours.
    NOW = utc(2026, 10, 27, 12, 0)

    @pytest.fixture(autouse=True)
    def london(self, settings):
        settings.TIME_ZONE = "Europe/London"

    @pytest.fixture
    def counted(self):
        bot = BotFactory(name="Shop")
        for moment in [
            utc(2026, 10, 22, 22, 59),  # 23:59 BST on the 22nd: before the days
            utc(2026, 10, 22, 23, 0),  # midnight BST: the first day
            utc(2026, 10, 24, 23, 30),  # 00:30 BST on the 25th
            utc(2026, 10, 25, 23, 30),  # 23:30 GMT, still the 25th
            utc(2026, 10, 27, 23, 59),  # later today
            utc(2026, 10, 28, 0, 0),  # midnight GMT: tomorrow
        ]:
            FormSubmissionFactory(
                event__bot=bot, event__handler_name="contact", event__received_at=moment
            )
        # 01:59 BST, then 01:30 GMT an hour later: both the 25th.
        for moment in [utc(2026, 10, 25, 0, 59), utc(2026, 10, 25, 1, 30)]:
            WebhookEventFactory(bot=bot, status="failed", received_at=moment)
        WebhookEventFactory(bot=bot, status="rejected", received_at=utc(2026, 10, 26))

    def test_each_count_falls_on_its_local_day(self, counted):
        data = overview(now=self.NOW, days=5)

        assert [day.isoformat() for day in data.days] == [
            "2026-10-23",
            "2026-10-24",
            "2026-10-25",
            "2026-10-26",
            "2026-10-27",
        ]
        assert data.submissions == {("Shop", "contact"): [1, 0, 2, 0, 1]}
        assert data.deliveries["processed"] == [1, 0, 2, 0, 1]
        assert data.deliveries["failed"] == [0, 0, 2, 0, 0]
        assert data.deliveries["rejected"] == [0, 0, 0, 1, 0]

    def test_bots_sharing_a_name_share_a_row(self, counted):
        other = BotFactory(name="Shop")
        FormSubmissionFactory(
            event__bot=other,
            event__handler_name="contact",
            event__received_at=utc(2026, 10, 24, 9, 0),
        )

        data = overview(now=self.NOW, days=5)

        assert data.submissions == {("Shop", "contact"): [1, 1, 2, 0, 1]}

    @pytest.mark.skipif(
        connection.vendor != "postgresql", reason="index-only scans are PostgreSQL's"
    )
    def test_the_per_day_counts_read_only_their_index(self, counted):
        with CaptureQueriesContext(connection) as queries:
            overview(now=self.NOW, days=5)
        per_day = [q["sql"] for q in queries if "width_bucket" in q["sql"]]
        assert len(per_day) == 2
        with connection.cursor() as cursor:
            # As on a large table, where reading the index alone is cheapest.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            for sql in per_day:
                cursor.execute("EXPLAIN " + sql)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                assert "Index Only Scan using" in plan, plan
