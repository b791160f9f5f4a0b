"""Fill the database with realistic deliveries, fast: for benchmarks and demos.

    DJANGO_SETTINGS_MODULE=bench.settings manage.py seed_events --count 1000000 \
        [--answers 5] [--bots 5] [--days 90 | --start 2025-01-01 [--end 2026-01-01]]

Every hundred events follow one pattern: 89 ``processed``, 3 ``failed``,
1 ``unrouted``, 3 ``rejected`` (bad signature: no delivery id, no payload)
and 1 ``processed`` followed by its ``duplicate``, so 96 in 100 events have a
submission with ``--answers`` answers and one handler run. Times are spread
evenly over the last ``--days`` days (or from ``--start`` to ``--end``,
default now: months of a partitioned table filled alike), oldest first, ids rising with time, as
a real receiver writes them. On a partitioned PostgreSQL database the months
of the range are made first (``partitions_ensure(since=start)``), so each
month's rows land in its own partition.

Rows go in with explicit ids, in batches of one transaction each: through
``COPY`` on PostgreSQL (about a million events a minute on two cores), as
multi-row inserts elsewhere. The id sequences are moved past the new rows
and, on PostgreSQL, the tables vacuumed and analysed, so the planner and the admin's row
estimate see them at once.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max, Model
from django.utils import timezone

from handlers import ResponseBuilder
from handlers.wire import answer_item, build_payload, render_reply
from submissions.envelope import error_body
from submissions.management.options import utc_date
from submissions.models import Bot, FormAnswer, FormSubmission, HandlerRun, WebhookEvent
from submissions.redaction import redact_headers
from submissions.services.partitions import is_partitioned, partitions_ensure
from submissions.values import value_as_text

BATCH_EVENTS = 5000

#: (status, has submission and run) for each slot of a run of 100 events.
Status = WebhookEvent.Status
PATTERN: list[str] = (
    [Status.FAILED] * 3
    + [Status.UNROUTED]
    + [Status.REJECTED] * 3
    + [Status.PROCESSED, Status.DUPLICATE]
    + [Status.PROCESSED] * 91
)
ACCEPTED = {Status.PROCESSED, Status.FAILED, Status.UNROUTED}
RUN_OUTCOME = {
    Status.PROCESSED: HandlerRun.Outcome.SUCCEEDED,
    Status.FAILED: HandlerRun.Outcome.FAILED,
    Status.UNROUTED: HandlerRun.Outcome.UNROUTED,
}

HANDLERS = ("save-form", "feedback", "signup", "support-request", "crm-push")
UNROUTED_HANDLER = "old-survey"
QUESTIONS: list[tuple[str, str, str]] = [
    ("name", "Your name", "text"),
    ("email", "Your email", "email"),
    ("rating", "How would you rate us?", "number"),
    ("topics", "Which topics interest you?", "multi"),
    ("comment", "Anything else you would like to tell us?", "textarea"),
    ("phone", "Phone number", "phone"),
    ("company", "Company", "text"),
    ("consent", "May we contact you?", "boolean"),
]
FIRST_NAMES = ("Zoe", "Amir", "Lena", "Kofi", "Maria", "Jun", "Olga", "Tom", "Inès")
LAST_NAMES = ("Smith", "Okafor", "Müller", "Tanaka", "Silva", "Dubois", "Novak")
TOPICS = ("billing", "api", "pricing", "onboarding", "security", "mobile", "exports")
WORDS = [
    "the",
    "delivery",
    "arrived",
    "late",
    "again",
    "and",
    "support",
    "never",
    "called",
    "back",
    "about",
    "my",
    "invoice",
    "please",
    "fix",
    "the",
    "export",
    "button",
    "mobile",
    "app",
    "crashes",
    "when",
    "I",
    "open",
    "settings",
    "great",
    "service",
    "thanks",
    "team",
    "love",
    "the",
    "new",
    "dashboard",
]
#: The headers every seeded delivery came with, stored as intake stores them:
#: through the same redaction (the token becomes ``Bearer [redacted]``).
HEADERS_BASE = redact_headers(
    {
        "Host": "hooks.example.com",
        "User-Agent": "logicdialog-webhooks/1.0",
        "Content-Type": "application/json",
        "Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2VlZA",
    }
)
#: What a handler that thanks the user replies, rendered as the intake renders it.
OK_REPLY = render_reply(ResponseBuilder().add_text("Thanks, we have your answers."))


@dataclass
class Tables:
    """One batch of rows, as tuples in each table's column order."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    submissions: list[tuple[Any, ...]] = field(default_factory=list)
    answers: list[tuple[Any, ...]] = field(default_factory=list)
    runs: list[tuple[Any, ...]] = field(default_factory=list)


EVENT_COLUMNS = (
    "id",
    "bot_id",
    "received_at",
    "handler_name",
    "status",
    "error_code",
    "error_detail",
    "traceback",
    "remote_addr",
    "headers",
    "raw_body",
    "body_truncated",
    "body_size",
    "body_sha256",
    "payload",
    "delivery_id",
    "duplicate_of_id",
    "conversation_id",
    "user_id",
    "response_status",
    "response_body",
    "duration_ms",
    "erased_at",
    "erased_by",
)
SUBMISSION_COLUMNS = (
    "id",
    "event_id",
    "bot_id",
    "handler_name",
    "conversation_id",
    "user_id",
    "submitted_at",
    "received_at",
)
ANSWER_COLUMNS = (
    "id",
    "submission_id",
    "position",
    "key",
    "label",
    "input_type",
    "value",
    "value_text",
    "received_at",
)
RUN_COLUMNS = (
    "id",
    "event_id",
    "attempt",
    "trigger",
    "handler_name",
    "started_at",
    "finished_at",
    "duration_ms",
    "outcome",
    "error_type",
    "message",
    "traceback",
    "reply",
    "received_at",
)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Generator:
    """Makes the rows of events ``first`` to ``first + count - 1`` (0-based)."""

    def __init__(
        self,
        *,
        bots: Sequence[int],
        count: int,
        answers: int,
        start: datetime,
        end: datetime,
        seed: int,
    ):
        self.bots = bots
        self.count = count
        self.answers = answers
        self.rng = random.Random(seed)  # noqa: S311 - test data, not secrets
        self.run_tag = secrets.token_hex(4)  # delivery ids differ between runs
        self.start = start
        self.step = (end - start) / max(count, 1)
        self.questions = [
            QUESTIONS[i] if i < len(QUESTIONS) else (f"q{i}", f"Question {i}", "text")
            for i in range(answers)
        ]

    def value(self, key: str, input_type: str, index: int) -> Any:
        rng = self.rng
        if key == "name":
            return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if key == "email":
            return f"user{index}@example.com"
        if input_type == "number":
            return rng.randint(1, 5)
        if input_type == "multi":
            return rng.sample(TOPICS, rng.randint(1, 3))
        if input_type == "phone":
            return f"+44 20 7{rng.randint(100, 999)} {rng.randint(1000, 9999)}"
        if input_type == "boolean":
            return rng.random() < 0.7
        return " ".join(rng.choices(WORDS, k=rng.randint(3, 14)))

    def batch(self, *, first: int, size: int, ids: dict[str, int], out: Tables) -> None:
        rng = self.rng
        for index in range(first, first + size):
            slot = PATTERN[index % len(PATTERN)]
            event_id = ids["event"] + index
            received_at = self.start + self.step * index
            bot_id = self.bots[index % len(self.bots)]
            handler = (
                UNROUTED_HANDLER
                if slot == Status.UNROUTED
                else HANDLERS[(index // 7) % len(HANDLERS)]
            )
            conversation = f"conv-{rng.randrange(self.count // 4 + 1):08d}"
            user = f"user-{rng.randrange(self.count // 8 + 1):08d}"
            # A duplicate repeats the event just before it, delivery id and all.
            delivery_index = index - 1 if slot == Status.DUPLICATE else index
            delivery_id = f"seed-{self.run_tag}-{delivery_index}"
            answers = [
                (key, label, input_type, self.value(key, input_type, index))
                for key, label, input_type in self.questions
            ]
            payload = build_payload(
                handler_name=handler,
                conversation_id=conversation,
                user_id=user,
                delivery_id=delivery_id,
                form_values=[
                    answer_item(
                        key=key, label=label, input_type=input_type, value=value
                    )
                    for key, label, input_type, value in answers
                ],
            )
            body_text = _compact(payload)
            body = body_text.encode()
            headers = _compact(
                {**HEADERS_BASE, "Content-Length": str(len(body))},
            )
            duration = round(rng.uniform(2.0, 25.0), 3)
            error_code = error_detail = traceback = ""
            duplicate_of = None
            if slot in (Status.PROCESSED, Status.DUPLICATE):
                status, reply = 200, OK_REPLY
            elif slot == Status.FAILED:
                status = 500
                error_code = "handler_error"
                error_detail = f"RuntimeError: CRM timed out for delivery {delivery_id}"
                traceback = (
                    "Traceback (most recent call last):\n"
                    '  File "crm/webhook_handlers.py", line 42, in handle\n'
                    "RuntimeError: CRM timed out\n"
                )
                reply = error_body("handler_error", "The handler failed.")
            elif slot == Status.UNROUTED:
                status, error_code = 404, "unknown_handler"
                error_detail = f"No webhook handler named {handler!r}."
                reply = error_body("unknown_handler", error_detail)
            else:  # rejected: the token did not verify; nothing parsed is kept
                status, error_code = 401, "invalid_signature"
                error_detail = (
                    "The token's signature does not match this bot's JWT secret."
                )
                reply = error_body(error_code, error_detail)
            if slot == Status.DUPLICATE:
                duplicate_of = event_id - 1
            parsed = slot != Status.REJECTED
            out.events.append(
                (
                    event_id,
                    bot_id,
                    received_at,
                    handler if parsed else "",
                    slot,
                    error_code,
                    error_detail,
                    traceback,
                    f"10.0.{index % 256}.{(index // 256) % 256}",
                    headers,
                    body,
                    False,
                    len(body),
                    hashlib.sha256(body).hexdigest(),
                    body_text if parsed else None,
                    delivery_id if parsed else "",
                    duplicate_of,
                    conversation if parsed else "",
                    user if parsed else "",
                    status,
                    _compact(reply),
                    duration,
                    None,  # never erased
                    "",
                )
            )
            if slot not in ACCEPTED:
                continue
            submission_id = ids["submission"]
            ids["submission"] += 1
            out.submissions.append(
                (
                    submission_id,
                    event_id,
                    bot_id,
                    handler,
                    conversation,
                    user,
                    received_at,
                    received_at,
                )
            )
            for position, (key, label, input_type, value) in enumerate(answers):
                out.answers.append(
                    (
                        ids["answer"],
                        submission_id,
                        position,
                        key,
                        label,
                        input_type,
                        _compact(value),
                        value_as_text(value),
                        received_at,
                    )
                )
                ids["answer"] += 1
            started_at = received_at + timedelta(milliseconds=1)
            out.runs.append(
                (
                    ids["run"],
                    event_id,
                    1,
                    "delivery",
                    handler,
                    started_at,
                    started_at + timedelta(milliseconds=duration),
                    duration,
                    RUN_OUTCOME[slot],
                    "" if slot == Status.PROCESSED else "builtins.RuntimeError",
                    "" if slot == Status.PROCESSED else error_detail,
                    traceback,
                    _compact(OK_REPLY) if slot == Status.PROCESSED else None,
                    received_at,
                )
            )
            ids["run"] += 1


def _next_id(model: type[Model]) -> int:
    return (model.objects.aggregate(last=Max("pk"))["last"] or 0) + 1


def _insert(
    model: type[Model], columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        adapt = connection.ops.adapt_datetimefield_value
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({marks})",  # noqa: S608 - our own names
            [
                tuple(adapt(v) if isinstance(v, datetime) else v for v in row)
                for row in rows
            ],
        )


class Command(BaseCommand):
    help = (
        "Fill the database with realistic bots, events, submissions, answers and "
        "handler runs, in bulk (COPY on PostgreSQL). For benchmarks and demos."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--count", type=int, required=True, help="How many events to add."
        )
        parser.add_argument(
            "--answers",
            type=int,
            default=5,
            help="Answers per submission (default 5).",
        )
        parser.add_argument(
            "--bots",
            type=int,
            default=5,
            help="Spread events over this many bots, seed-bot-1... (default 5).",
        )
        parser.add_argument(
            "--days",
            type=int,
            default=90,
            help="Spread events over this many days up to now (default 90).",
        )
        parser.add_argument(
            "--start",
            type=utc_date,
            help="Spread events from this date (YYYY-MM-DD, UTC) instead.",
        )
        parser.add_argument(
            "--end",
            type=utc_date,
            help="With --start: up to this date (default now).",
        )
        parser.add_argument(
            "--seed", type=int, default=1, help="Random seed (default 1)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        count, answers = options["count"], options["answers"]
        if count < 1:
            raise CommandError("--count must be at least 1.")
        if not 1 <= answers <= 100:
            raise CommandError("--answers must be between 1 and 100.")
        if options["bots"] < 1 or options["days"] < 1:
            raise CommandError("--bots and --days must be at least 1.")
        end = options["end"] or timezone.now()
        start = options["start"] or end - timedelta(days=options["days"])
        if options["end"] and not options["start"]:
            raise CommandError("--end goes with --start.")
        if start >= end:
            raise CommandError("--start must be before --end.")
        if is_partitioned():
            # Each month of the range in its own partition, as a receiver that
            # ran through those months (or the conversion) would have them;
            # without this, everything before this month lands in ``_before``.
            made = partitions_ensure(since=start)
            if made:
                self.stderr.write(
                    f"  made {len(made)} partitions back to {start:%Y-%m}"
                )
        bots = [
            Bot.objects.get_or_create(
                slug=f"seed-bot-{n}", defaults={"name": f"Seed bot {n}"}
            )[0].pk
            for n in range(1, options["bots"] + 1)
        ]
        ids = {
            "event": _next_id(WebhookEvent),
            "submission": _next_id(FormSubmission),
            "answer": _next_id(FormAnswer),
            "run": _next_id(HandlerRun),
        }
        generator = Generator(
            bots=bots,
            count=count,
            answers=answers,
            start=start,
            end=end,
            seed=options["seed"],
        )
        how = "COPY" if connection.vendor == "postgresql" else "multi-row INSERT"
        started = time.perf_counter()
        totals = {"submissions": 0, "answers": 0}
        report_every = max(count // 10, BATCH_EVENTS)
        for first in range(0, count, BATCH_EVENTS):
            tables = Tables()
            size = min(BATCH_EVENTS, count - first)
            generator.batch(first=first, size=size, ids=ids, out=tables)
            with transaction.atomic():
                _insert(WebhookEvent, EVENT_COLUMNS, tables.events)
                _insert(FormSubmission, SUBMISSION_COLUMNS, tables.submissions)
                _insert(FormAnswer, ANSWER_COLUMNS, tables.answers)
                _insert(HandlerRun, RUN_COLUMNS, tables.runs)
            totals["submissions"] += len(tables.submissions)
            totals["answers"] += len(tables.answers)
            done = first + size
            if done % report_every < BATCH_EVENTS or done == count:
                rate = done / (time.perf_counter() - started)
                self.stderr.write(f"  {done:>9} / {count} events ({rate:,.0f}/s)")
        models = [WebhookEvent, FormSubmission, FormAnswer, HandlerRun]
        with connection.cursor() as cursor:
            for statement in connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(statement)
            if connection.vendor == "postgresql":
                for model in models:
                    # VACUUM too: sets the visibility map, so index-only scans
                    # (the admin's counts) work at once, as after autovacuum.
                    table = connection.ops.quote_name(model._meta.db_table)
                    if connection.get_autocommit():
                        cursor.execute(f"VACUUM ANALYZE {table}")
                    else:  # inside a test's transaction
                        cursor.execute(f"ANALYZE {table}")
        elapsed = time.perf_counter() - started
        self.stdout.write(
            f"Added {count} events, {totals['submissions']} submissions and "
            f"{totals['answers']} answers for {len(bots)} bots via {how} "
            f"in {elapsed:.1f} s."
        )
