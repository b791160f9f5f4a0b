"""Replays from the admin: a few rows at once in the request, more as a job.

Up to ``INLINE_LIMIT`` events (the rows selected, or every row the list's
filters select) are replayed in the request, as before, and the result is
said at once. More make a confirmation page with the count and the filter,
then a ``ReplayJob`` for the task worker; its list shows the progress and
cancels. A job's filter is the list's bot, handler, status and date
filters, or the selected rows: replaying more than a few events of a
*search* is left to ``replay_events``.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.html import format_html

from submissions.admin.common import ReadOnlyAdminMixin
from submissions.models import HandlerRun, ReplayJob, WebhookEvent
from submissions.permissions import REPLAY_WEBHOOKEVENT
from submissions.replay import REPLAYABLE, webhook_events_replay
from submissions.replay_jobs import INLINE_LIMIT, replay_job_cancel, replay_job_create
from submissions.selectors.events import ReplayFilter, replay_estimate

#: The most events a job names one by one (runs selected across every page).
MAX_EVENT_IDS = 10_000
#: The events list's query parameters a job's filter can hold; "o" (order)
#: and "p" (page) change nothing it selects.
LIST_PARAMETERS = {
    "bot__id__exact",
    "handler_name",
    "status__exact",
    "received_at__gte",
    "received_at__lt",
    "o",
    "p",
}


def replay_and_report(
    modeladmin: admin.ModelAdmin, request: HttpRequest, events: QuerySet[WebhookEvent]
) -> None:
    """Run events again through today's handlers (as `replay_events` does) and say how it went."""
    outcomes: dict[str, int] = {}
    ordered = events.select_related("bot").order_by("received_at", "id")
    for _, run in webhook_events_replay(events=ordered):
        outcome = run.get_outcome_display()
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    replayed = sum(outcomes.values())
    summary = ", ".join(
        f"{n} {outcome.lower()}" for outcome, n in sorted(outcomes.items())
    )
    message = f"Replayed {replayed} event(s)" + (f": {summary}." if summary else ".")
    skipped = events.count() - replayed
    if skipped:
        message += f" Skipped {skipped} rejected or duplicate event(s); replay a duplicate's original."
    failed = any(outcome != HandlerRun.Outcome.SUCCEEDED.label for outcome in outcomes)
    modeladmin.message_user(
        request, message, messages.WARNING if failed else messages.SUCCESS
    )


def _moment(text: str) -> datetime | None:
    moment = parse_datetime(text)
    if moment is None and (day := parse_date(text)) is not None:
        moment = datetime.combine(day, time.min)
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def list_filter_as_job(request: HttpRequest) -> ReplayFilter | None:
    """The events list's filters as a job's, or None when it has others (a search)."""
    params = request.GET
    if set(params) - LIST_PARAMETERS:
        return None
    status = params.get("status__exact")
    if status is not None and status not in REPLAYABLE:
        return None
    try:
        bot_id = int(params["bot__id__exact"]) if "bot__id__exact" in params else None
    except ValueError:
        return None
    since = (
        _moment(params["received_at__gte"]) if "received_at__gte" in params else None
    )
    until = _moment(params["received_at__lt"]) if "received_at__lt" in params else None
    if None in (since, until) and {"received_at__gte", "received_at__lt"} & set(params):
        return None
    return ReplayFilter(
        statuses=[status] if status else list(REPLAYABLE),
        bot_id=bot_id,
        handler_name=params.get("handler_name"),
        since=since,
        until=until,
    )


def replay_or_confirm(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    events: QuerySet[WebhookEvent],
    selected: ReplayFilter | None,
) -> TemplateResponse | HttpResponseRedirect | None:
    """A few events replayed at once; more confirmed, then queued as a job."""
    if events.order_by()[: INLINE_LIMIT + 1].count() <= INLINE_LIMIT:
        replay_and_report(modeladmin, request, events)
        return None
    if selected is None:
        modeladmin.message_user(
            request,
            f"More than {INLINE_LIMIT} events are replayed as a background job, "
            "whose filter can be the list's bot, handler, status and date filters "
            "or the rows selected, not a search: filter the list instead, or use "
            "`manage.py replay_events`.",
            messages.ERROR,
        )
        return None
    counted = replay_estimate(selected=selected)
    if request.POST.get("confirm") != "yes":
        return TemplateResponse(
            request,
            "admin/submissions/replay_confirmation.html",
            {
                **modeladmin.admin_site.each_context(request),
                "opts": modeladmin.model._meta,
                "title": "Replay events",
                "estimate": counted[0],
                "described": selected.describe(),
                "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                "select_across": request.POST.get("select_across", "0"),
                "action": request.POST.get("action", ""),
            },
        )
    job = replay_job_create(
        selected=selected, created_by=request.user, source="admin", counted=counted
    )
    modeladmin.message_user(
        request,
        f"Queued replay job #{job.pk} for {job.estimate} event(s); its progress is below.",
        messages.SUCCESS,
    )
    return HttpResponseRedirect(reverse("admin:submissions_replayjob_changelist"))


def selection_as_job(request: HttpRequest) -> ReplayFilter | None:
    """What the events list's action selected, as a job's filter."""
    if request.POST.get("select_across") == "1":
        return list_filter_as_job(request)
    ids = [int(pk) for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)]
    return ReplayFilter(statuses=list(REPLAYABLE), event_ids=ids)


def runs_as_job(runs: QuerySet[HandlerRun]) -> ReplayFilter | None:
    """The events of the runs selected, named one by one (up to ``MAX_EVENT_IDS``)."""
    ids = list(
        runs.order_by()
        .values_list("event_id", flat=True)
        .distinct()[: MAX_EVENT_IDS + 1]
    )
    if len(ids) > MAX_EVENT_IDS:
        return None
    return ReplayFilter(statuses=list(REPLAYABLE), event_ids=sorted(ids))


@admin.register(ReplayJob)
class ReplayJobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Bulk replays and how far each has got; a record, cancelled but never edited."""

    list_display = [
        "__str__",
        "created_at",
        "created_by",
        "source",
        "status",
        "progress",
        "succeeded",
        "failed",
        "finished_at",
    ]
    list_filter = ["status", "source"]
    list_select_related = ["created_by"]
    actions = ["cancel_jobs"]
    readonly_fields = ["filter_described", "progress"]
    exclude = ["filter"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REPLAY_WEBHOOKEVENT)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Who may replay follows the jobs they start.
        return self.has_replay_permission(request) or super().has_view_permission(
            request, obj
        )

    @admin.display(description="progress")
    def progress(self, job: ReplayJob) -> str:
        return format_html(
            '<progress max="100" value="{}"></progress> {} of {} ({}%)',
            job.percent,
            job.done,
            job.estimate,
            job.percent,
        )

    @admin.display(description="filter")
    def filter_described(self, job: ReplayJob) -> str:
        return ReplayFilter.from_json(job.filter).describe()

    @admin.action(description="Cancel selected jobs", permissions=["replay"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[ReplayJob]) -> None:
        cancelled = sum(replay_job_cancel(job_id=job.pk) for job in queryset)
        self.message_user(
            request,
            f"Cancelled {cancelled} job(s); each stops before its next batch.",
            messages.SUCCESS if cancelled else messages.WARNING,
        )
