"""Keeping the tallies: per-day counts of submissions and deliveries, and each form's questions.

At ten million events the forms list, a form's columns and the overview's
charts read every row of every month: seconds each. The tallies hold what
they need per day (``tally_models``), so a page reads a few thousand tally
rows and only the rows the tallies do not cover yet
(``selectors.tallies``). Nothing depends on them being up to date: a page
is exact without them, only slower.

How they stay exact:

- **New rows by id.** ``TallyState`` says up to which submission and event
  id everything is tallied; ``tallies_count`` adds the rows after it in
  batches of ``TALLY_BATCH`` ids, each batch one transaction, taking only
  rows older than ``TALLY_LAG`` (so no row with a smaller id is still
  uncommitted: every write path here commits in milliseconds). A row
  stored late, dated in the past (a re-read delivery, ``seed_events``),
  has a new id, so it is still found.
- **Changed rows by day.** A change to rows already tallied (an erasure, a
  purge, a retention policy, a re-read, a replay's new status, an admin's
  delete) marks their days (``TallyDay``) before it is made; a marked day
  is read from its rows until ``tallies_count`` recounts it.
- **Days in one time zone.** The site's (``TIME_ZONE``) when they were
  counted; after a change of it the tallies are not read, and the next
  ``tallies_count`` starts them again.

A question's first and last place only ever grow: one whose answers were
all deleted keeps its (empty) column in the form's table until
``tallies --rebuild``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connections, transaction
from django.db.models import Count, Max, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from submissions.models import (
    DeliveryDayTally,
    FormAnswer,
    FormDayTally,
    FormSubmission,
    QuestionTally,
    TallyDay,
    TallyState,
    WebhookEvent,
)
from submissions.moments import site_day_bounds as day_bounds

#: Rows are tallied once they are this old: no write path holds an id uncommitted this long.
TALLY_LAG = timedelta(minutes=10)
#: Ids read per batch (one transaction each) when adding new rows.
TALLY_BATCH = 100_000
#: Seconds a run waits for the writers in flight when it noted the newest ids.
SETTLE_WAIT = 5.0


def time_zone_name() -> str:
    return timezone.get_current_timezone_name()


# Counting: the task and ``manage.py tallies``.


@dataclass(slots=True)
class TallyReport:
    submissions: int = 0
    events: int = 0
    days_recounted: int = 0
    started_again: bool = False


def _state_locked(using: str) -> TallyState:
    TallyState.objects.using(using).get_or_create(pk=1)
    return TallyState.objects.using(using).select_for_update().get(pk=1)


def tallies_rebuild(*, using: str = "default") -> None:
    """Forget every tally: the next ``tallies_count`` starts from the first row."""
    with transaction.atomic(using=using):
        state = _state_locked(using)
        for model in (FormDayTally, DeliveryDayTally, QuestionTally, TallyDay):
            model.objects.using(using).all().delete()
        state.submissions_up_to = state.events_up_to = 0
        state.time_zone = time_zone_name()
        state.counted_at = None
        state.save(using=using)


def tallies_count(
    *, now: datetime | None = None, using: str = "default", batch: int = TALLY_BATCH
) -> TallyReport:
    """Add the rows older than ``TALLY_LAG`` not tallied yet; recount the marked days."""
    now = now or timezone.now()
    horizon = now - TALLY_LAG
    report = TallyReport()
    with transaction.atomic(using=using):
        state = _state_locked(using)
        started_again = state.time_zone != time_zone_name()
    if started_again:
        # A first run (no time zone yet) only starts; a change is reported.
        report.started_again = bool(state.time_zone)
        tallies_rebuild(using=using)
    for model, field in (
        (FormSubmission, "submissions_up_to"),
        (WebhookEvent, "events_up_to"),
    ):
        newest = _newest_settled(model, horizon=horizon, using=using)
        while newest is not None:
            with transaction.atomic(using=using):
                state = _state_locked(using)
                lower = getattr(state, field)
                if lower >= newest:
                    break
                upper = min(lower + batch, newest)
                ids = Q(pk__gt=lower, pk__lte=upper)
                if model is FormSubmission:
                    report.submissions += _submissions_add(ids, using=using)
                else:
                    report.events += _events_add(ids, using=using)
                setattr(state, field, upper)
                state.save(using=using)
    for day, generation in list(
        TallyDay.objects.using(using).order_by("day").values_list("day", "generation")
    ):
        with transaction.atomic(using=using):
            state = _state_locked(using)
            _day_recount(day, state, using=using)
            TallyDay.objects.using(using).filter(
                day=day, generation=generation
            ).delete()
        report.days_recounted += 1
    TallyState.objects.using(using).filter(pk=1).update(counted_at=now)
    return report


def _newest_settled(model: Any, *, horizon: datetime, using: str) -> int | None:
    """The greatest id up to which every row of ``model`` is committed and older
    than ``horizon``; None when there is none (or the writers did not finish).

    Ids are given out before their rows commit, and a row stored late may be
    dated in the past (a re-read's submission), so neither the newest id nor
    the newest old row's id is safe by itself. On PostgreSQL the run notes
    the newest id and the time, then waits (at most ``SETTLE_WAIT`` seconds,
    else it counts nothing new this time) until every transaction of this
    database begun before then that may be writing has ended: every row up
    to that id is then committed or never will be. (SQLite has one writer
    at a time: what it has not committed has greater ids.) The
    cut is then just before the first row up to it that is newer than
    ``horizon``, so every row counted is older than that.
    """
    connection = connections[using]
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"SELECT clock_timestamp(), (SELECT max(id) FROM {table})"  # noqa: S608 - a model's table
            )
            noted_at, newest = cursor.fetchone()
            deadline = time.monotonic() + SETTLE_WAIT
            while newest is not None:
                # This database's transactions begun before then that may
                # write (an id, a row not yet committed); not the cluster's.
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND xact_start < %s "
                    "AND (backend_xid IS NOT NULL OR state = 'active')",
                    [noted_at],
                )
                if cursor.fetchone()[0] == 0:
                    break
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.05)
        else:
            cursor.execute(f"SELECT max(id) FROM {table}")  # noqa: S608 - a model's table
            (newest,) = cursor.fetchone()
        if newest is None:
            return None
        # The fence (OFFSET 0) reads the few recent rows by time, not every
        # id from the first until a recent one.
        fence = "OFFSET 0" if connection.vendor == "postgresql" else "LIMIT -1 OFFSET 0"
        cursor.execute(
            f"SELECT min(id) FROM (SELECT id FROM {table} "  # noqa: S608 - a model's table
            f"WHERE received_at >= %s AND id <= %s {fence}) fresh",
            [horizon, newest],
        )
        (fresh,) = cursor.fetchone()
    return newest if fresh is None else fresh - 1


#: Ids per query when a day's submissions are too far apart for one range.
SPREAD_CHUNK = 1000


def _answers_of(forms: dict[int, Any], received: list[datetime], *, using: str) -> Any:
    """(submission id, key, position, label, type) of the answers of ``forms``' ids.

    One range of ids when they lie close (a batch, a day), bounded by their
    months; else (a day a re-read added a new id to) by lists of ids.
    """
    answers = FormAnswer.objects.using(using).order_by()
    fields = ("submission_id", "key", "position", "label", "input_type")
    ids = sorted(forms)
    if ids[-1] - ids[0] < 4 * len(ids):
        yield from (
            answers.filter(
                submission_id__gte=ids[0],
                submission_id__lte=ids[-1],
                received_at__gte=min(received),
                received_at__lte=max(received),
            )
            .values_list(*fields)
            .iterator(chunk_size=10000)
        )
        return
    for start in range(0, len(ids), SPREAD_CHUNK):
        yield from answers.filter(
            submission_id__in=ids[start : start + SPREAD_CHUNK],
            received_at__gte=min(received),
            received_at__lte=max(received),
        ).values_list(*fields)


def _form_days(submissions: Any) -> list[dict[str, Any]]:
    tz = timezone.get_current_timezone()
    return list(
        submissions.annotate(day=TruncDate("submitted_at", tzinfo=tz))
        .order_by()
        .values("bot_id", "handler_name", "day")
        .annotate(n=Count("*"), last_at=Max("submitted_at"), last_id=Max("id"))
    )


def _submissions_add(ids: Q, *, using: str) -> int:
    """Add the submissions ``ids`` selects to the day tallies and the questions."""
    found = _form_days(FormSubmission.objects.using(using).filter(ids))
    if not found:
        return 0
    tallies = FormDayTally.objects.using(using)
    known = {
        (t.bot_id, t.handler_name, t.day): t
        for t in tallies.filter(day__in={row["day"] for row in found})
    }
    changed = []
    for row in found:
        tally = known.get((row["bot_id"], row["handler_name"], row["day"]))
        if tally is None:
            tally = FormDayTally(
                bot_id=row["bot_id"],
                handler_name=row["handler_name"],
                day=row["day"],
                submissions=0,
                last_at=row["last_at"],
                last_id=row["last_id"],
            )
        tally.submissions += row["n"]
        # Each the greatest of its own, as the rows' ``Max`` of each gives.
        tally.last_at = max(tally.last_at, row["last_at"])
        tally.last_id = max(tally.last_id, row["last_id"])
        changed.append(tally)
    tallies.bulk_create(
        changed,
        update_conflicts=True,
        unique_fields=["bot", "handler_name", "day"],
        update_fields=["submissions", "last_at", "last_id"],
    )
    _questions_merge(FormSubmission.objects.using(using).filter(ids), using=using)
    return sum(row["n"] for row in found)


def _events_add(ids: Q, *, using: str) -> int:
    tz = timezone.get_current_timezone()
    found = list(
        WebhookEvent.objects.using(using)
        .filter(ids)
        .annotate(day=TruncDate("received_at", tzinfo=tz))
        .order_by()
        .values_list("day", "status")
        .annotate(n=Count("*"))
    )
    if not found:
        return 0
    tallies = DeliveryDayTally.objects.using(using)
    known = {
        (t.day, t.status): t
        for t in tallies.filter(day__in={day for day, _, _ in found})
    }
    changed = []
    for day, status, n in found:
        tally = known.get((day, status)) or DeliveryDayTally(
            day=day, status=status, deliveries=0
        )
        tally.deliveries += n
        changed.append(tally)
    tallies.bulk_create(
        changed,
        update_conflicts=True,
        unique_fields=["day", "status"],
        update_fields=["deliveries"],
    )
    return sum(n for _, _, n in found)


def _questions_merge(submissions: Any, *, using: str) -> None:
    """Widen each form's questions to the places of ``submissions``' answers (never narrows).

    Two queries: the submissions, then their answers by one range of
    submission ids (bounded by their months, so PostgreSQL reads only
    those partitions); a neighbour's answers read with the range are skipped.
    """
    forms: dict[int, tuple[int, str, datetime]] = {}
    received: list[datetime] = []
    for pk, bot_id, handler_name, at, received_at in submissions.order_by().values_list(
        "pk", "bot_id", "handler_name", "submitted_at", "received_at"
    ):
        forms[pk] = (bot_id, handler_name, at)
        received.append(received_at)
    if not forms:
        return
    first: dict[tuple[int, str, str], tuple[Any, ...]] = {}
    last: dict[tuple[int, str, str], tuple[Any, ...]] = {}
    for submission_id, key, position, label, kind in _answers_of(
        forms, received, using=using
    ):
        form = forms.get(submission_id)
        if form is None:
            continue
        question = (form[0], form[1], key)
        place = (form[2], submission_id, position)
        if question not in first or place < first[question]:
            first[question] = place
        if question not in last or place > last[question][:3]:
            last[question] = (*place, label, kind)
    if not first:
        return
    tallies = QuestionTally.objects.using(using)
    known = {
        (q.bot_id, q.handler_name, q.key): q
        for q in tallies.filter(
            bot_id__in={bot_id for bot_id, _, _ in first},
            handler_name__in={name for _, name, _ in first},
            key__in={key for _, _, key in first},
        )
    }
    changed = []
    for question, place in first.items():
        tally = known.get(question)
        latest = last[question]
        if tally is None:
            tally = QuestionTally(
                bot_id=question[0],
                handler_name=question[1],
                key=question[2],
                first_at=place[0],
                first_id=place[1],
                first_position=place[2],
                last_at=latest[0],
                last_id=latest[1],
                last_position=latest[2],
                label=latest[3],
                input_type=latest[4],
            )
        else:
            if place < (tally.first_at, tally.first_id, tally.first_position):
                tally.first_at, tally.first_id, tally.first_position = place
            if latest[:3] >= (tally.last_at, tally.last_id, tally.last_position):
                (
                    tally.last_at,
                    tally.last_id,
                    tally.last_position,
                    tally.label,
                    tally.input_type,
                ) = latest
        changed.append(tally)
    tallies.bulk_create(
        changed,
        update_conflicts=True,
        unique_fields=["bot", "handler_name", "key"],
        update_fields=[
            "first_at",
            "first_id",
            "first_position",
            "last_at",
            "last_id",
            "last_position",
            "label",
            "input_type",
        ],
    )


def _day_recount(day: date, state: TallyState, *, using: str) -> None:
    """Count ``day`` again from its rows (those up to the state's ids)."""
    start, end = day_bounds(day)
    FormDayTally.objects.using(using).filter(day=day).delete()
    DeliveryDayTally.objects.using(using).filter(day=day).delete()
    submissions = FormSubmission.objects.using(using).filter(
        submitted_at__gte=start,
        submitted_at__lt=end,
        pk__lte=state.submissions_up_to,
    )
    if state.submissions_up_to:
        FormDayTally.objects.using(using).bulk_create(
            FormDayTally(
                bot_id=row["bot_id"],
                handler_name=row["handler_name"],
                day=row["day"],
                submissions=row["n"],
                last_at=row["last_at"],
                last_id=row["last_id"],
            )
            for row in _form_days(submissions)
            if row["day"] == day
        )
        _questions_merge(submissions, using=using)
    if state.events_up_to:
        DeliveryDayTally.objects.using(using).bulk_create(
            DeliveryDayTally(day=day, status=status, deliveries=n)
            for status, n in WebhookEvent.objects.using(using)
            .filter(
                received_at__gte=start, received_at__lt=end, pk__lte=state.events_up_to
            )
            .order_by()
            .values_list("status")
            .annotate(n=Count("*"))
        )


__all__ = [
    "TALLY_BATCH",
    "TALLY_LAG",
    "TallyReport",
    "tallies_count",
    "tallies_rebuild",
]
