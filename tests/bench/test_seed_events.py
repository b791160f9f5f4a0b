"""seed_events: the rows it writes are the rows the product would have written.

On PostgreSQL (DATABASE_URL) the rows go in through COPY, so this also
exercises that path.
"""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, F

from bench.management.commands.seed_events import PATTERN, Command
from handlers import ResponseBuilder
from handlers.wire import render_reply
from submissions.models import Bot, FormAnswer, FormSubmission, HandlerRun, WebhookEvent
from submissions.redaction import REDACTED, redact_headers
from tests.factories import WebhookEventFactory

pytestmark = pytest.mark.django_db(transaction=True)

COUNT = 250  # two and a half runs of the 100-event pattern
ANSWERS = 3


def seed(**options: int) -> str:
    out = StringIO()
    # The command belongs to the bench app (bench.settings); it runs here as is.
    call_command(Command(), stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def expected(status: str, count: int = COUNT) -> int:
    return sum(1 for i in range(count) if PATTERN[i % len(PATTERN)] == status)


def test_counts_statuses_and_answers_per_submission():
    output = seed(count=COUNT, answers=ANSWERS, bots=2)

    assert WebhookEvent.objects.count() == COUNT
    by_status = dict(WebhookEvent.objects.values_list("status").annotate(n=Count("id")))
    assert set(by_status) <= set(WebhookEvent.Status.values)
    for status in WebhookEvent.Status.values:
        assert by_status.get(status, 0) == expected(status)
    accepted = expected("processed") + expected("failed") + expected("unrouted")
    assert FormSubmission.objects.count() == accepted
    assert FormAnswer.objects.count() == accepted * ANSWERS
    assert set(
        FormSubmission.objects.annotate(n=Count("answers")).values_list("n", flat=True)
    ) == {ANSWERS}
    positions = set(FormAnswer.objects.values_list("position", flat=True))
    assert positions == set(range(ANSWERS))
    assert Bot.objects.filter(slug__startswith="seed-bot-").count() == 2
    how = "COPY" if connection.vendor == "postgresql" else "multi-row INSERT"
    assert f"Added {COUNT} events, {accepted} submissions" in output
    assert f"via {how}" in output


def test_rows_refer_to_each_other_consistently():
    seed(count=COUNT, answers=ANSWERS)

    # Every submission belongs to an accepted event of the same bot and handler.
    submissions = FormSubmission.objects.select_related("event")
    for submission in submissions:
        event = submission.event
        assert event is not None
        assert event.status in {"processed", "failed", "unrouted"}
        assert (event.bot_id, event.handler_name, event.conversation_id) == (
            submission.bot_id,
            submission.handler_name,
            submission.conversation_id,
        )
        assert submission.submitted_at == event.received_at
        assert event.payload["id"] == event.delivery_id
    # One delivery run per accepted event, its outcome matching the status.
    outcome = {"processed": "succeeded", "failed": "failed", "unrouted": "unrouted"}
    runs = HandlerRun.objects.select_related("event")
    assert runs.count() == FormSubmission.objects.count()
    for run in runs:
        assert run.attempt == 1
        assert run.outcome == outcome[run.event.status]
        assert run.finished_at >= run.started_at
    # Duplicates point at an original with the same delivery id and reply.
    duplicates = WebhookEvent.objects.filter(status="duplicate")
    assert duplicates.exists()
    assert not duplicates.exclude(
        duplicate_of__delivery_id=F("delivery_id"),
        duplicate_of__duplicate_of__isnull=True,
        duplicate_of__response_status=F("response_status"),
    ).exists()
    # Rejected requests keep their body but no delivery id or payload.
    rejected = WebhookEvent.objects.filter(status="rejected")
    assert not rejected.exclude(delivery_id="", payload=None).exists()
    assert all(len(bytes(e.raw_body)) == e.body_size for e in rejected)
    # Oldest first: ids rise with time.
    times = list(
        WebhookEvent.objects.order_by("pk").values_list("received_at", flat=True)
    )
    assert times == sorted(times)


def test_seeding_twice_adds_and_the_sequences_continue():
    seed(count=120, answers=2)
    seed(count=120, answers=2)

    assert WebhookEvent.objects.count() == 240
    # Delivery ids differ between runs: the unique constraint held.
    originals = WebhookEvent.objects.filter(duplicate_of__isnull=True).exclude(
        delivery_id=""
    )
    assert originals.values("delivery_id").distinct().count() == originals.count()
    # The id sequence was moved past the explicit ids: a normal insert works.
    last = WebhookEvent.objects.order_by("-pk").first().pk
    assert WebhookEventFactory().pk > last


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"count": 0}, "--count must be at least 1"),
        ({"count": 5, "answers": 0}, "--answers must be between 1 and 100"),
    ],
)
def test_bad_options_say_what_is_valid(options, message):
    with pytest.raises(CommandError, match=message):
        seed(**options)


def test_stored_headers_went_through_the_intakes_redaction():
    seed(count=3, answers=1)

    for headers in WebhookEvent.objects.values_list("headers", flat=True):
        assert headers["Authorization"] == f"Bearer {REDACTED}"
        assert redact_headers(headers) == headers


def test_processed_replies_are_what_the_wire_renders_for_a_thank_you():
    seed(count=12, answers=1)

    thanks = render_reply(ResponseBuilder().add_text("Thanks, we have your answers."))
    replies = WebhookEvent.objects.filter(status="processed").values_list(
        "response_body", flat=True
    )
    assert replies
    assert all(reply == thanks for reply in replies)
    assert thanks["blocks"] == [
        {"type": "text", "text": "Thanks, we have your answers."}
    ]


def test_a_date_range_spreads_events_and_their_children_keep_the_key():
    from datetime import UTC, datetime

    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC)
    seed(count=120, answers=2, bots=1, start=start, end=end)
    times = list(
        WebhookEvent.objects.order_by("received_at").values_list(
            "received_at", flat=True
        )
    )
    assert times[0] == start
    assert times[-1] < end
    assert times[-1].month == 6  # spread over the range, not bunched at its start
    assert not FormAnswer.objects.exclude(
        received_at=F("submission__event__received_at")
    ).exists()
    assert not HandlerRun.objects.exclude(received_at=F("event__received_at")).exists()
    if connection.vendor == "postgresql":  # each month in its own partition
        with connection.cursor() as cursor:
            for table in ("submissions_webhookevent", "submissions_formanswer"):
                cursor.execute(f"SELECT COUNT(*) FROM {table}_before")  # noqa: S608
                assert cursor.fetchone()[0] == 0
                cursor.execute(f"SELECT COUNT(*) FROM {table}_p2024_03")  # noqa: S608
                assert cursor.fetchone()[0] > 0
    with pytest.raises(CommandError, match="before --end"):
        seed(count=1, start=end, end=start)
