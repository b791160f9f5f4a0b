"""Services: purging old events in batches, submissions kept or not."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from submissions.models import FormAnswer, FormSubmission, HandlerRun, WebhookEvent
from tests.factories import WebhookEventFactory, submission_with_answers

pytestmark = pytest.mark.django_db


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_events", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def old_and_new():
    long_ago = timezone.now() - timedelta(days=100)
    old = submission_with_answers({"email": "old@x.y"}, event__received_at=long_ago)
    old_event = old.event
    HandlerRun.objects.create(
        event=old_event,
        attempt=1,
        handler_name="save-form",
        started_at=long_ago,
        finished_at=long_ago,
        duration_ms=1,
        outcome="succeeded",
    )
    WebhookEventFactory(
        bot=old_event.bot,
        status="duplicate",
        duplicate_of=old_event,
        received_at=long_ago,
    )
    rejected = WebhookEventFactory(status="rejected", received_at=long_ago)
    new = submission_with_answers({"email": "new@x.y"})
    return old, new, rejected


def test_dry_run_counts_and_deletes_nothing(old_and_new):
    assert "Would delete 3 event(s) and 0 submission(s)" in purge(
        "--older-than", "30", "--dry-run"
    )
    assert "Would delete 3 event(s) and 1 submission(s)" in purge(
        "--older-than", "30", "--dry-run", "--include-submissions"
    )
    assert WebhookEvent.objects.count() == 4


def test_purge_keeps_submissions_unless_asked(old_and_new):
    old, new, _ = old_and_new
    out = purge("--older-than", "30", "--batch-size", "1")
    assert "Deleted 3 event(s) and 0 submission(s)" in out
    assert list(WebhookEvent.objects.all()) == [new.event]
    assert not HandlerRun.objects.exists()
    old.refresh_from_db()
    assert old.event is None
    assert old.answers.get().value == "old@x.y"


def test_purge_with_submissions(old_and_new):
    _, new, _ = old_and_new
    assert "Deleted 3 event(s) and 1 submission(s)" in purge(
        "--older-than", "30", "--include-submissions"
    )
    assert list(FormSubmission.objects.all()) == [new]
    assert list(FormAnswer.objects.values_list("value", flat=True)) == ["new@x.y"]


def test_a_duplicate_older_than_the_cutoff_goes_even_if_its_original_stays():
    original = WebhookEventFactory(delivery_id="d")
    WebhookEventFactory(
        bot=original.bot,
        delivery_id="d",
        status="duplicate",
        duplicate_of=original,
        received_at=timezone.now() - timedelta(days=60),
    )
    assert "Deleted 1 event(s)" in purge("--older-than", "30")
    assert list(WebhookEvent.objects.all()) == [original]


def test_bad_arguments():
    with pytest.raises(CommandError, match="0 or more"):
        purge("--older-than", "-1")
    with pytest.raises(CommandError, match="1 to 5000"):
        purge("--older-than", "1", "--batch-size", "0")
    with pytest.raises(CommandError, match="1 to 5000"):
        purge("--older-than", "1", "--batch-size", "5001")
