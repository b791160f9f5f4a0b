"""What was received (webhook events) and what ran (handler runs), with replay."""

from __future__ import annotations

import binascii
from typing import Any

from django.contrib import admin
from django.db.models import BooleanField, QuerySet, Value
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from submissions.admin.bigtable import (
    BigTableAdmin,
    ExactSearchMixin,
    HandlerNameFilter,
)
from submissions.admin.common import (
    PRE_STYLE,
    ReadOnlyAdminMixin,
    TallyMarkingDeleteMixin,
    event_link,
    preformatted,
    pretty_json,
    search_link,
)
from submissions.admin.personal_data import ErasureMixin
from submissions.admin.replay_jobs import (
    replay_or_confirm,
    runs_as_job,
    selection_as_job,
)
from submissions.masking import Redactor, can_see_sensitive, event_redactor
from submissions.models import FormSubmission, HandlerRun, WebhookEvent
from submissions.permissions import REPLAY_WEBHOOKEVENT

#: Shown for a raw body to staff who may not see sensitive answers.
RAW_BODY_WITHHELD = (
    "Withheld: the body may hold answers you see masked (the payload above "
    "shows them masked); staff who may see sensitive answers see it."
)


def with_visibility(queryset: QuerySet, request: HttpRequest) -> QuerySet:
    """Each row says whether this user sees sensitive answers unmasked."""
    visible = Value(can_see_sensitive(request.user), output_field=BooleanField())
    return queryset.annotate(sensitive_visible=visible)


def redactor_for(event: WebhookEvent, row: Any = None) -> Redactor | None:
    """None when ``row`` (the event, or its run) was read for a user who sees
    everything; else what to mask. Read without the annotation: masked."""
    if getattr(row if row is not None else event, "sensitive_visible", False):
        return None
    cached = getattr(event, "_redactor", None)
    if cached is None:
        cached = event._redactor = event_redactor(event)
    return cached


def shown_text(event: WebhookEvent, text: str, row: Any = None) -> str:
    redactor = redactor_for(event, row)
    return text if redactor is None else redactor.text(text)


def shown_json(event: WebhookEvent, value: Any, row: Any = None) -> Any:
    redactor = redactor_for(event, row)
    return value if redactor is None else redactor.json(value)


class ReplayMixin:
    """The replay actions need their own permission, not just the view one."""

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REPLAY_WEBHOOKEVENT)


class HandlerRunInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = HandlerRun
    extra = 0
    can_delete = False
    fields = [
        "attempt",
        "trigger",
        "outcome",
        "started_at",
        "duration_ms",
        "error_type",
        "message_shown",
    ]
    readonly_fields = fields
    ordering = ["attempt"]
    verbose_name_plural = "handler runs"

    def get_queryset(self, request: HttpRequest) -> QuerySet[HandlerRun]:
        return with_visibility(super().get_queryset(request), request).select_related(
            "event"
        )

    @admin.display(description="message")
    def message_shown(self, run: HandlerRun) -> str:
        return shown_text(run.event, run.message, run)


@admin.register(HandlerRun)
class HandlerRunAdmin(ReplayMixin, ReadOnlyAdminMixin, BigTableAdmin):
    """Every handler run; filter on "Failed permanently" for the dead-letter list."""

    list_display = [
        "started_at",
        "event_link",
        "handler_name",
        "trigger",
        "attempt",
        "outcome",
        "error_type",
    ]
    list_filter = [
        "outcome",
        "trigger",
        HandlerNameFilter,  # a plain field filter reads every row for its choices
        ("started_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["event"]
    search_fields = ["=handler_name", "=event__id", "=event__conversation_id"]
    # Newest first, on run_time_idx; the model's ordering (by event, i.e. the
    # event's time) would join and sort the whole table for every page.
    ordering = ["-started_at", "-id"]
    sortable_by = ["started_at"]
    actions = ["replay_events"]
    readonly_fields = ["message_shown", "traceback_display", "reply_json"]
    exclude = ["message", "traceback", "reply"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[HandlerRun]:
        return with_visibility(super().get_queryset(request), request)

    @admin.action(description="Replay these runs' events", permissions=["replay"])
    def replay_events(
        self, request: HttpRequest, queryset: QuerySet[HandlerRun]
    ) -> TemplateResponse | HttpResponseRedirect | None:
        return replay_or_confirm(
            self,
            request,
            WebhookEvent.objects.filter(pk__in=queryset.values("event_id")),
            runs_as_job(queryset),
        )

    @admin.display(description="event")
    def event_link(self, run: HandlerRun) -> str:
        return event_link(run.event_id)

    @admin.display(description="message")
    def message_shown(self, run: HandlerRun) -> str:
        return shown_text(run.event, run.message, run)

    @admin.display(description="traceback")
    def traceback_display(self, run: HandlerRun) -> str:
        return preformatted(shown_text(run.event, run.traceback, run))

    @admin.display(description="reply")
    def reply_json(self, run: HandlerRun) -> str:
        return pretty_json(shown_json(run.event, run.reply, run))


@admin.register(WebhookEvent)
class WebhookEventAdmin(
    ErasureMixin,
    ReplayMixin,
    TallyMarkingDeleteMixin,
    ReadOnlyAdminMixin,
    ExactSearchMixin,
    BigTableAdmin,
):
    tally_time_field = "received_at"

    def tally_cascaded(self, queryset: QuerySet) -> list[Any]:
        # Its copies go with an original, whatever day they came.
        return list(
            WebhookEvent.objects.filter(
                duplicate_of__in=queryset.order_by().values("pk")
            ).values_list("received_at", flat=True)
        )

    list_display = [
        "received_at",
        "bot",
        "handler_name",
        "status",
        "conversation",
        "duration",
    ]
    list_filter = [
        "bot",
        HandlerNameFilter,
        "status",
        ("received_at", admin.DateFieldListFilter),
    ]
    search_fields = ["handler_name", "conversation_id", "user_id", "delivery_id"]
    exact_search_fields = ("handler_name", "conversation_id", "user_id", "delivery_id")
    search_help_text = (
        "An exact conversation id, user id, delivery id, handler name or event number."
    )
    list_select_related = ["bot"]
    sortable_by = ["received_at"]
    readonly_fields = [
        "submission_link",
        "duration",
        "headers_json",
        "payload_json",
        "raw_body_display",
        "reply_json",
        "error_detail_shown",
        "traceback_display",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEvent]:
        return with_visibility(super().get_queryset(request), request)

    def get_fieldsets(
        self, request: HttpRequest, obj: WebhookEvent | None = None
    ) -> list[tuple[str | None, dict[str, Any]]]:
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            (
                None,
                {
                    "fields": [
                        "received_at",
                        "bot",
                        "status",
                        "handler_name",
                        "conversation_id",
                        "user_id",
                        "delivery_id",
                        "duplicate_of",
                        "submission_link",
                        "duration",
                    ]
                },
            ),
        ]
        if obj is not None and (obj.error_code or obj.error_detail or obj.traceback):
            fieldsets.append(
                (
                    "Error",
                    {
                        "fields": [
                            "error_code",
                            "error_detail_shown",
                            "traceback_display",
                        ]
                    },
                )
            )
        fieldsets += [
            (
                "Request",
                {
                    "fields": [
                        "payload_json",
                        "headers_json",
                        "remote_addr",
                        "body_size",
                        "body_sha256",
                        "body_truncated",
                        "raw_body_display",
                    ]
                },
            ),
            ("Reply", {"fields": ["response_status", "reply_json"]}),
        ]
        return fieldsets

    inlines = [HandlerRunInline]
    actions = ["replay_selected", "erase_personal_data"]

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay_selected(
        self, request: HttpRequest, queryset: QuerySet[WebhookEvent]
    ) -> TemplateResponse | HttpResponseRedirect | None:
        # Up to INLINE_LIMIT at once; more confirmed, then a job (replay_jobs).
        return replay_or_confirm(self, request, queryset, selection_as_job(request))

    @admin.display(description="conversation")
    def conversation(self, event: WebhookEvent) -> str:
        return search_link(self, event.conversation_id)

    @admin.display(description="duration")
    def duration(self, event: WebhookEvent) -> str:
        return "-" if event.duration_ms is None else f"{event.duration_ms:.1f} ms"

    @admin.display(description="submission")
    def submission_link(self, event: WebhookEvent) -> str:
        submission = FormSubmission.objects.filter(event=event).only("pk").first()
        if submission is None:
            return "-"
        url = reverse("admin:submissions_formsubmission_change", args=[submission.pk])
        return format_html('<a href="{}">Submission #{}</a>', url, submission.pk)

    @admin.display(description="headers")
    def headers_json(self, event: WebhookEvent) -> str:
        return pretty_json(event.headers)

    @admin.display(description="payload")
    def payload_json(self, event: WebhookEvent) -> str:
        return pretty_json(shown_json(event, event.payload))

    @admin.display(description="reply body")
    def reply_json(self, event: WebhookEvent) -> str:
        return pretty_json(shown_json(event, event.response_body))

    @admin.display(description="error detail")
    def error_detail_shown(self, event: WebhookEvent) -> str:
        return shown_text(event, event.error_detail) or "-"

    @admin.display(description="traceback")
    def traceback_display(self, event: WebhookEvent) -> str:
        return preformatted(shown_text(event, event.traceback))

    @admin.display(description="raw body")
    def raw_body_display(self, event: WebhookEvent) -> str:
        raw = bytes(event.raw_body or b"")
        if not raw:
            return "-"
        redactor = redactor_for(event)
        if redactor is not None and not (event.payload and redactor.is_empty):
            # Only a body that parsed into no sensitive answer is shown masked users.
            return RAW_BODY_WITHHELD
        note = " (truncated)" if event.body_truncated else ""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            lines = (
                binascii.hexlify(raw[i : i + 32], " ").decode()
                for i in range(0, len(raw), 32)
            )
            return format_html(
                '<p>Not UTF-8 text; hex{}:</p><pre style="{}">{}</pre>',
                note,
                PRE_STYLE,
                "\n".join(lines),
            )
        return format_html(
            '<p>Text{}:</p><pre style="{}">{}</pre>', note, PRE_STYLE, text
        )
