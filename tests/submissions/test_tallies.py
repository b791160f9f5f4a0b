"""The console's tallies: what they count, and that every page stays exact around them."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from submissions.models import (
    DeliveryDayTally,
    FormDayTally,
    FormSubmission,
    HandlerRun,
    QuestionTally,
    TallyDay,
    TallyState,
    WebhookEvent,
)
from submissions.selectors.console import forms_summary, overview
from submissions.selectors.exports import form_columns, submission_export_columns
from submissions.services import tallies, tally_marks
from submissions.services.privacy import personal_data_erase
from submissions.services.retention import webhook_events_purge
from submissions.services.runs import handler_run_record
from submissions.services.tallies import TALLY_LAG, tallies_count, tallies_rebuild
from tests.factories import BotFactory, HandlerRunFactory, bulk_submissions

pytestmark = pytest.mark.django_db

LATER = TALLY_LAG + timedelta(minutes=1)


@pytest.fixture
def bot():
    return BotFactory(name="Helpdesk")


@pytest.fixture
def forms(bot):
    """Two forms over the last twelve days, a few submissions a day, and one today."""
    now = timezone.now()
    made = bulk_submissions(
        24,
        bot=bot,
        handler_name="contact",
        answers=lambda i: {"name": f"N{i}", "email": f"u{i}@example.com"},
        start=now - timedelta(days=12),
        step=timedelta(hours=12),
    )
    made += bulk_submissions(
        5,
        bot=bot,
        handler_name="survey",
        answers=lambda i: {"score": i, **({"comment": "ok"} if i > 2 else {})},
        start=now - timedelta(days=4),
        step=timedelta(days=1),
    )
    return made


def summaries(now):
    found = forms_summary(now=now, failing_since=now - timedelta(days=1))
    return found.total, [
        (s.handler_name, s.total, s.last_7_days, s.today, s.last_at, s.labels)
        for s in found.forms
    ]


def charts(now):
    found = overview(now=now)
    return found.submissions, found.deliveries


def count(now=None):
    """Tally as the task would, a little later than now (every row old enough)."""
    return tallies_count(now=(now or timezone.now()) + LATER)


def test_counting_keeps_every_page_as_it_was_and_then_reads_the_tallies(bot, forms):
    now = timezone.now()
    before = summaries(now), charts(now), form_columns(bot=bot, handler_name="survey")

    report = count()

    assert (report.submissions, report.events) == (29, 29)
    assert not report.started_again  # the first run: nothing to start again
    state = TallyState.objects.get()
    assert state.submissions_up_to == max(s.pk for s in forms)
    assert FormDayTally.objects.filter(handler_name="contact").count() >= 12
    assert sum(DeliveryDayTally.objects.values_list("deliveries", flat=True)) == 29
    assert set(QuestionTally.objects.values_list("handler_name", "key")) == {
        ("contact", "name"),
        ("contact", "email"),
        ("survey", "score"),
        ("survey", "comment"),
    }
    after = summaries(now), charts(now), form_columns(bot=bot, handler_name="survey")
    assert after == before
    # They are read, not the rows: a tally changed by hand shows.
    FormDayTally.objects.filter(handler_name="survey").update(submissions=100)
    total = {row[0]: row[1] for row in summaries(now)[1]}["survey"]
    assert total == 100 * FormDayTally.objects.filter(handler_name="survey").count()


def test_rows_newer_than_the_tallies_are_counted_from_the_rows(bot, forms):
    count()
    newer = bulk_submissions(
        3,
        bot=bot,
        handler_name="survey",
        answers=lambda i: {"score": 9, "mood": "fine"},
        start=timezone.now() - timedelta(seconds=5),
    )
    now = timezone.now()
    summary = {row[0]: row for row in summaries(now)[1]}
    assert summary["survey"][1:4] == (8, 8, 4)  # today: the last of the 5 and the 3
    assert [c.key for c in form_columns(bot=bot, handler_name="survey")] == [
        "score",
        "comment",
        "mood",
    ]
    assert form_columns(bot=bot, handler_name="survey") == submission_export_columns(
        submissions=FormSubmission.objects.filter(handler_name="survey")
    )
    # Not yet tallied: younger than the lag.
    assert tallies_count(now=now).submissions == 0
    assert count().submissions == 3
    assert TallyState.objects.get().submissions_up_to == newer[-1].pk


def test_small_batches_add_up_to_the_same_tallies(bot, forms):
    tallies_count(now=timezone.now() + LATER, batch=4)
    batched = sorted(
        FormDayTally.objects.values_list("handler_name", "day", "submissions")
    )
    tallies_rebuild()
    count()
    assert (
        sorted(FormDayTally.objects.values_list("handler_name", "day", "submissions"))
        == batched
    )


def test_an_erasure_is_seen_at_once_and_counted_at_the_next_run(bot, forms):
    count()
    gone = forms[3]
    personal_data_erase(
        selector="user_id", value=gone.user_id, erased_by="t", source="test"
    )
    assert TallyDay.objects.exists()
    now = timezone.now()
    total = {row[0]: row[1] for row in summaries(now)[1]}["contact"]
    assert total == 23
    # user-3 answered both forms: two days marked, two recounted.
    assert count().days_recounted == 2
    assert not TallyDay.objects.exists()
    assert {row[0]: row[1] for row in summaries(now)[1]}["contact"] == 23
    assert sum(FormDayTally.objects.values_list("submissions", flat=True)) == 27


def test_a_replay_of_a_counted_delivery_moves_it_to_its_new_status(bot, forms):
    now = timezone.now()
    count()
    event = WebhookEvent.objects.order_by("received_at").first()
    assert event.status == WebhookEvent.Status.PROCESSED
    handler_run_record(
        event=event,
        run=HandlerRunFactory.build(event=event, outcome=HandlerRun.Outcome.FAILED),
        status=WebhookEvent.Status.FAILED,
        error_code="handler_error",
    )
    _, deliveries = charts(now)
    if event.received_at >= now - timedelta(days=29):
        assert sum(deliveries["failed"]) == 1
    count()
    assert DeliveryDayTally.objects.get(status="failed").deliveries == 1
    assert sum(DeliveryDayTally.objects.values_list("deliveries", flat=True)) == 29


def test_a_purge_recounts_the_days_it_empties(bot, forms):
    now = timezone.now()
    count()
    report = webhook_events_purge(
        before=now - timedelta(days=6), include_submissions=True
    )
    assert report.submissions > 0
    expected = summaries(now), charts(now)
    count()
    assert (summaries(now), charts(now)) == expected
    assert sum(FormDayTally.objects.values_list("submissions", flat=True)) == (
        FormSubmission.objects.count()
    )
    assert not TallyDay.objects.exists()


def test_another_time_zone_reads_no_tallies_until_they_are_counted_again(
    bot, forms, settings
):
    now = timezone.now()
    count()
    settings.TIME_ZONE = "Pacific/Kiritimati"  # 14 hours ahead of UTC
    with timezone.override("Pacific/Kiritimati"):
        live = summaries(now), charts(now)
        FormDayTally.objects.update(submissions=100)  # not read: other days
        assert (summaries(now), charts(now)) == live
        assert count().started_again
        assert TallyState.objects.get().time_zone == "Pacific/Kiritimati"
        assert (summaries(now), charts(now)) == live


def test_the_command_counts_and_rebuilds(bot, forms, capsys):
    call_command("tallies", "--rebuild")
    # The newest submission is seconds old, younger than the lag: not yet.
    assert "Tallied 28 submission(s) and 28 event(s)" in capsys.readouterr().out
    newest = max(forms, key=lambda s: s.pk)
    day_ago = timezone.now() - timedelta(days=1)
    FormSubmission.objects.filter(pk=newest.pk).update(
        submitted_at=day_ago, received_at=day_ago
    )
    WebhookEvent.objects.filter(pk=newest.event_id).update(received_at=day_ago)
    call_command("tallies", "--count")
    assert "Tallied 1 submission(s) and 1 event(s)" in capsys.readouterr().out


def test_an_admin_delete_marks_the_day(admin_client, bot, forms):
    count()
    gone = forms[0]
    response = admin_client.post(
        f"/admin/submissions/formsubmission/{gone.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert TallyDay.objects.filter(day=timezone.localtime(gone.submitted_at).date())
    now = timezone.now()
    assert {row[0]: row[1] for row in summaries(now)[1]}["contact"] == 23


def test_readiness_says_when_the_tallies_were_counted_and_warns_when_long_ago(
    client, forms
):
    assert "tallies" not in client.get("/readyz").json()  # never counted
    tallies_count()
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["tallies"]["marked_days"] == 0
    assert "warning" not in body["tallies"]
    TallyState.objects.update(counted_at=timezone.now() - timedelta(hours=2))
    body = client.get("/readyz").json()
    assert body["status"] == "ready"  # a warning only: the pages stay exact
    assert "tallies --count" in body["tallies"]["warning"]


def test_a_row_stored_late_but_dated_in_the_past_moves_no_recent_row_into_the_tallies(
    bot, forms
):
    """A re-read's submission has a new id and an old date: the cut still stops
    before the first recent row, so a recent delivery is not counted while its
    handler may still change its status."""
    count()
    (recent,) = bulk_submissions(
        1, bot=bot, answers=lambda i: {"name": "R"}, start=timezone.now()
    )
    (late,) = bulk_submissions(
        1,
        bot=bot,
        answers=lambda i: {"name": "L"},
        start=timezone.now() - timedelta(days=2),
    )
    assert late.pk > recent.pk
    tallies_count()  # now: the recent row is younger than the lag
    state = TallyState.objects.get()
    assert state.submissions_up_to == recent.pk - 1
    assert state.events_up_to == recent.event_id - 1
    now = timezone.now()
    assert {row[0]: row[1] for row in summaries(now)[1]}["save-form"] == 2
    count()  # later: both
    assert TallyState.objects.get().submissions_up_to == late.pk
    assert {row[0]: row[1] for row in summaries(now)[1]}["save-form"] == 2


def test_a_mark_made_during_a_recount_is_kept_for_the_next(bot, forms, monkeypatch):

    count()
    day = timezone.localdate()
    tally_marks.tally_days_mark([day])
    recount = tallies._day_recount

    def recount_and_mark_again(*args, **kwargs):
        recount(*args, **kwargs)
        tally_marks.tally_days_mark([day])  # another writer, meanwhile

    monkeypatch.setattr(tallies, "_day_recount", recount_and_mark_again)
    assert count().days_recounted == 1
    assert TallyDay.objects.filter(day=day).exists()  # recounted again next time
    monkeypatch.setattr(tallies, "_day_recount", recount)
    count()
    assert not TallyDay.objects.exists()


def test_an_admin_delete_of_an_original_marks_its_copies_days(admin_client, bot):
    from tests.factories import WebhookEventFactory

    now = timezone.now()
    original = WebhookEventFactory(bot=bot, received_at=now - timedelta(days=5))
    WebhookEventFactory(
        bot=bot,
        received_at=now - timedelta(days=2),
        duplicate_of=original,
        status=WebhookEvent.Status.DUPLICATE,
    )
    count()
    assert DeliveryDayTally.objects.filter(status="duplicate").exists()
    response = admin_client.post(
        f"/admin/submissions/webhookevent/{original.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not WebhookEvent.objects.exists()  # the copy went with it
    assert TallyDay.objects.count() == 2
    count()
    assert not DeliveryDayTally.objects.exists()


def test_a_recount_of_a_day_with_a_late_row_reads_both_its_submissions_answers(bot):
    day_ago = timezone.now() - timedelta(days=1)
    bulk_submissions(1, bot=bot, answers=lambda i: {"early": 1}, start=day_ago)
    bulk_submissions(12, bot=bot, answers=lambda i: {"other": 1})  # ids between
    bulk_submissions(
        1, bot=bot, answers=lambda i: {"late": 1}, start=day_ago + timedelta(minutes=1)
    )
    count()
    QuestionTally.objects.all().delete()  # only the recount can bring them back
    tally_marks.tally_moments_mark([day_ago])
    count()
    assert {"early", "late"} <= set(QuestionTally.objects.values_list("key", flat=True))
