"""The admin staff use every day: bots, what was received, what was answered, CSV.

Fast at any size: no unfiltered ``COUNT(*)`` (``show_full_result_count`` off,
PostgreSQL's row estimate for unfiltered lists), no facets, no filter that
scans a table for its choices, exact-match search on indexed columns, sorting
only by indexed columns, and a constant number of queries per page.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connections
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from submissions.dispatch import REPLAYABLE, webhook_event_replay
from submissions.downloads import submission_csv_response
from submissions.exports import ExportOptions
from submissions.models import (
    Bot,
    FormAnswer,
    FormSubmission,
    HandlerRun,
    WebhookEvent,
    generate_secret,
)
from submissions.selectors import submission_handler_names, table_row_estimate
from submissions.services import bot_rotate_secret
from submissions.values import value_as_text

#: How many answers the submission list shows per row.
FIRST_ANSWERS = 3
#: Shorter search terms match only the exact columns (a trigram is 3 characters).
ANSWER_SEARCH_MIN_LENGTH = 3
PRE_STYLE = "white-space: pre-wrap; overflow-wrap: anywhere; max-width: 100%"


# --- shared pieces ---------------------------------------------------------------


class CappedCount(int):
    """A lower bound on a count: "1,000+" in the admin's "N results" texts."""

    def __str__(self) -> str:
        return f"{int(self):,}+"


class EstimatedCountPaginator(Paginator):
    """Counts that stay cheap at any size.

    An unfiltered list on PostgreSQL over a big table uses
    ``pg_class.reltuples`` for ``COUNT(*)`` (the page links are then
    approximate, which nobody minds on a list of millions). A filtered or
    searched list is counted up to ``count_cap`` rows (``SELECT count(*) FROM
    (... LIMIT cap + 1)``): beyond that the count is a ``CappedCount``, shown
    as "1,000+", and pages past the cap can still be opened.
    """

    #: Below this estimate the exact count is cheap enough to run.
    exact_below = 50_000
    #: Filtered lists are counted up to this many rows; None counts them all.
    count_cap: int | None = 1000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        if not queryset.query.where:
            estimate = table_row_estimate(model=queryset.model, using=queryset.db)
            if estimate is not None and estimate >= self.exact_below:
                return estimate
        if self.count_cap is None:
            return super().count
        found = queryset[: self.count_cap + 1].count()
        return CappedCount(self.count_cap) if found > self.count_cap else found

    @property
    def capped(self) -> bool:
        return isinstance(self.count, CappedCount)

    def validate_number(self, number: Any) -> int:
        if not self.capped:
            return super().validate_number(number)
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from None
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        return number

    def page(self, number: Any) -> Page:
        if not self.capped:
            return super().page(number)
        # More rows than counted: a page past the cap is as full as it can be.
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        return self._get_page(
            self.object_list[bottom : bottom + self.per_page], number, self
        )


class ProbeEachRow(Exists):
    """``EXISTS`` that PostgreSQL tests per outer row, never as a hashed set.

    ``OFFSET 0`` keeps the planner from collecting the whole subquery first:
    for a word in a fifth of all answers that read 225,000 rows (0.9 s) where
    the newest page needs a few hundred index probes (2 ms).
    """

    def as_postgresql(
        self, compiler: Any, connection: Any, **extra: Any
    ) -> tuple[str, list[Any]]:
        return self.as_sql(
            compiler, connection, template="EXISTS(%(subquery)s OFFSET 0)", **extra
        )


class HandlerNameFilter(admin.SimpleListFilter):
    """Handler names from the registry: listing the choices reads no table."""

    title = "handler"
    parameter_name = "handler_name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = submission_handler_names()
        current = self.value()
        if current and current not in names:  # e.g. a handler since removed
            names = [*names, current]
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(handler_name=self.value())
        return queryset


def pretty_json(value: Any) -> str:
    if value is None:
        return "-"
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    return format_html('<pre class="json-block" style="{}">{}</pre>', PRE_STYLE, text)


def search_link(model_admin: admin.ModelAdmin, term: str) -> str:
    """A link to ``model_admin``'s list searched for ``term`` (e.g. one conversation)."""
    if not term:
        return "-"
    opts = model_admin.model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return format_html(
        '<a href="{}?{}" title="Everything in this conversation">{}</a>',
        url,
        urlencode({"q": term}),
        Truncator(term).chars(40),
    )


class ExactSearchMixin:
    """Search by exact value on indexed columns (an ``icontains`` scan is slow at size).

    A whole number also matches the primary key.
    """

    exact_search_fields: tuple[str, ...] = ()

    def search_q(self, term: str) -> Q:
        q = Q()
        for name in self.exact_search_fields:
            q |= Q(**{name: term})
        if term.isdigit():
            q |= Q(pk=int(term))
        return q

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(self.search_q(term)), False


# --- bots ------------------------------------------------------------------------


class BotAdminForm(forms.ModelForm):
    secret = forms.CharField(
        label="JWT secret",
        required=False,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password"}
        ),
        help_text=(
            "Paste the secret shown under Settings → Webhook in logicdialog. Leave "
            "empty to keep the current secret (or, for a new bot, to generate one). "
            "A replaced secret stays accepted as the previous secret."
        ),
    )

    class Meta:
        model = Bot
        fields = ["name", "slug", "is_active", "secret"]

    def clean_secret(self) -> str:
        entered = self.cleaned_data["secret"]
        return entered or self.instance.secret or generate_secret()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        new_secret = cleaned.get("secret")
        if self.instance.pk and new_secret and new_secret != self.instance.secret:
            # Deliveries signed with the old secret keep working until logicdialog
            # uses the new one.
            self.instance.previous_secret = self.instance.secret
        return cleaned


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    form = BotAdminForm
    list_display = ["name", "slug", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    sortable_by = ["name", "slug", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["rotate_secret"]
    change_form_template = "admin/submissions/bot/change_form.html"

    class Media:
        js = ["submissions/admin/copy.js"]

    @staticmethod
    def webhook_url(request: HttpRequest, bot: Bot) -> str:
        return request.build_absolute_uri(reverse("webhook", args=[bot.slug]))

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        @admin.display(description="webhook URL")
        def webhook_url(bot: Bot) -> str:
            return self.webhook_url(request, bot)

        return [*self.list_display, webhook_url]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Bot | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk:
            context["webhook_url"] = self.webhook_url(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description="Rotate secret", permissions=["change"])
    def rotate_secret(
        self, request: HttpRequest, queryset: QuerySet[Bot]
    ) -> TemplateResponse:
        rotated = []
        for bot in queryset.order_by("name"):
            new_secret = bot_rotate_secret(bot=bot)
            self.log_change(request, bot, "Rotated the JWT secret.")
            rotated.append(
                {
                    "bot": bot,
                    "secret": new_secret,
                    "url": self.webhook_url(request, bot),
                }
            )
        response = TemplateResponse(
            request,
            "admin/submissions/bot/rotated.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "New secrets",
                "rotated": rotated,
            },
        )
        # Shown once: never kept by a cache or the browser's history.
        response["Cache-Control"] = "no-store"
        return response


# --- events ----------------------------------------------------------------------


def replay_and_report(
    modeladmin: admin.ModelAdmin, request: HttpRequest, events: QuerySet[WebhookEvent]
) -> None:
    """Run events again through today's handlers (as `replay_events` does) and say how it went."""
    outcomes: dict[str, int] = {}
    replayable = events.filter(status__in=REPLAYABLE).select_related("bot")
    for event in replayable.order_by("received_at", "id"):
        outcome = webhook_event_replay(event=event).get_outcome_display()
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


class HandlerRunInline(admin.TabularInline):
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
        "message",
    ]
    readonly_fields = fields
    ordering = ["attempt"]
    verbose_name_plural = "handler runs"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(HandlerRun)
class HandlerRunAdmin(admin.ModelAdmin):
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
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    actions = ["replay_events"]
    readonly_fields = ["traceback_display", "reply_json"]
    exclude = ["traceback", "reply"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: HandlerRun | None = None
    ) -> bool:
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("submissions.replay_webhookevent")

    @admin.action(description="Replay these runs' events", permissions=["replay"])
    def replay_events(
        self, request: HttpRequest, queryset: QuerySet[HandlerRun]
    ) -> None:
        replay_and_report(
            self,
            request,
            WebhookEvent.objects.filter(pk__in=queryset.values("event_id")),
        )

    @admin.display(description="event")
    def event_link(self, run: HandlerRun) -> str:
        url = reverse("admin:submissions_webhookevent_change", args=[run.event_id])
        return format_html('<a href="{}">Event #{}</a>', url, run.event_id)

    @admin.display(description="traceback")
    def traceback_display(self, run: HandlerRun) -> str:
        if not run.traceback:
            return "-"
        return format_html('<pre style="{}">{}</pre>', PRE_STYLE, run.traceback)

    @admin.display(description="reply")
    def reply_json(self, run: HandlerRun) -> str:
        return pretty_json(run.reply)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ExactSearchMixin, admin.ModelAdmin):
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
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    readonly_fields = [
        "submission_link",
        "duration",
        "headers_json",
        "payload_json",
        "raw_body_display",
        "reply_json",
        "traceback_display",
    ]

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
                    {"fields": ["error_code", "error_detail", "traceback_display"]},
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
    actions = ["replay_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: WebhookEvent | None = None
    ) -> bool:
        return False  # what was received is a record: view it, never edit it

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("submissions.replay_webhookevent")

    @admin.action(description="Replay selected events", permissions=["replay"])
    def replay_selected(
        self, request: HttpRequest, queryset: QuerySet[WebhookEvent]
    ) -> None:
        replay_and_report(self, request, queryset)

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
        return pretty_json(event.payload)

    @admin.display(description="reply body")
    def reply_json(self, event: WebhookEvent) -> str:
        return pretty_json(event.response_body)

    @admin.display(description="traceback")
    def traceback_display(self, event: WebhookEvent) -> str:
        if not event.traceback:
            return "-"
        return format_html('<pre style="{}">{}</pre>', PRE_STYLE, event.traceback)

    @admin.display(description="raw body")
    def raw_body_display(self, event: WebhookEvent) -> str:
        raw = bytes(event.raw_body or b"")
        if not raw:
            return "-"
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


# --- submissions -----------------------------------------------------------------


class _QueryOnlyChangeList(ChangeList):
    """The changelist's filters, search and ordering without its count or page."""

    def get_results(self, request: HttpRequest) -> None:
        pass


@admin.register(FormSubmission)
class FormSubmissionAdmin(ExactSearchMixin, admin.ModelAdmin):
    list_display = [
        "received",
        "bot",
        "handler_name",
        "conversation",
        "user_id",
        "first_answers",
    ]
    list_filter = [
        "bot",
        HandlerNameFilter,
        ("submitted_at", admin.DateFieldListFilter),
    ]
    search_fields = [
        "handler_name",
        "conversation_id",
        "user_id",
        "answers__value_text",
    ]
    exact_search_fields = ("handler_name", "conversation_id", "user_id")
    #: Answer text found in this share of the submissions (or more) is searched
    #: by walking the newest submissions, not by collecting every match.
    common_share = 0.02
    search_help_text = (
        "An exact conversation id, user id or handler name, or text within an "
        "answer (3 characters or more)."
    )
    list_select_related = ["bot"]
    sortable_by = ["received"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    actions = ["export_as_csv", "export_as_csv_excel"]
    fields = [
        "submitted_at",
        "bot",
        "handler_name",
        "conversation_id",
        "user_id",
        "event_link",
        "answers_table",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[FormSubmission]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                Prefetch(
                    "answers",
                    queryset=FormAnswer.objects.filter(
                        position__lt=FIRST_ANSWERS
                    ).order_by("position"),
                    to_attr="first_answer_list",
                )
            )
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        """Exact matches on indexed columns, or answers containing the term.

        One ``id IN (... UNION ...)`` subquery rather than a correlated
        ``EXISTS`` OR-ed with the columns, which made PostgreSQL test every
        submission (2 s at a million). The answer text is matched with
        ``icontains``, served on PostgreSQL by a trigram index
        (``answer_text_trgm_idx``), so only terms of at least
        ``ANSWER_SEARCH_MIN_LENGTH`` characters (a trigram) search answers.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        exact = self.search_q(term)
        if len(term) < ANSWER_SEARCH_MIN_LENGTH:
            return queryset.filter(exact), False
        answers = FormAnswer.objects.filter(value_text__icontains=term)
        if self._is_common(answers):
            # A page of the newest matches is near the top of the time index:
            # walk it and test each submission's few answers.
            return queryset.filter(
                exact | ProbeEachRow(answers.filter(submission=OuterRef("pk")))
            ), False
        matching = FormSubmission.objects.filter(exact).order_by().values("pk")
        matching = matching.union(answers.order_by().values("submission_id"))
        return queryset.filter(pk__in=matching), False

    def _is_common(self, answers: QuerySet[FormAnswer]) -> bool:
        """Whether ``answers`` is at least ``common_share`` of the submissions.

        One query reading at most that many matches (through the trigram
        index); only on PostgreSQL, where the walk is planned as meant.
        """
        if answers.db and connections[answers.db].vendor != "postgresql":
            return False
        estimate = table_row_estimate(model=FormSubmission, using=answers.db)
        if not estimate:
            return False
        enough = max(int(estimate * self.common_share), 1)
        return answers.order_by()[:enough].count() >= enough

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: FormSubmission | None = None
    ) -> bool:
        return False

    def has_export_permission(self, request: HttpRequest) -> bool:
        codename = get_permission_codename("export", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    # list columns

    @admin.display(description="received", ordering="submitted_at")
    def received(self, submission: FormSubmission) -> Any:
        return submission.submitted_at

    @admin.display(description="conversation")
    def conversation(self, submission: FormSubmission) -> str:
        return search_link(self, submission.conversation_id)

    @admin.display(description="answers")
    def first_answers(self, submission: FormSubmission) -> str:
        answers = getattr(submission, "first_answer_list", [])
        if not answers:
            return "-"
        return format_html_join(
            "; ",
            "<b>{}</b>: {}",
            (
                (answer.key, Truncator(answer.value_text).chars(60))
                for answer in answers
            ),
        )

    # detail

    @admin.display(description="webhook event")
    def event_link(self, submission: FormSubmission) -> str:
        if submission.event_id is None:
            return "(purged)"
        url = reverse(
            "admin:submissions_webhookevent_change", args=[submission.event_id]
        )
        return format_html('<a href="{}">Event #{}</a>', url, submission.event_id)

    @admin.display(description="answers")
    def answers_table(self, submission: FormSubmission) -> str:
        answers = FormAnswer.objects.filter(submission=submission).order_by("position")
        rows = format_html_join(
            "\n",
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td>"
            '<td style="white-space: pre-wrap">{}</td></tr>',
            (
                (
                    answer.label,
                    answer.key,
                    answer.input_type,
                    value_as_text(answer.value),
                )
                for answer in answers
            ),
        )
        if not rows:
            return "-"
        return format_html(
            '<table class="answers"><thead><tr><th>Question</th><th>Key</th>'
            "<th>Type</th><th>Answer</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    # export

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "has_export_permission": self.has_export_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        wrap: Callable[..., Any] = self.admin_site.admin_view
        return [
            path(
                "export/",
                wrap(self.export_view),
                name="{}_{}_export".format(*info),
            ),
            path(
                "export/excel/",
                wrap(self.export_view),
                {"excel": True},
                name="{}_{}_export_excel".format(*info),
            ),
            *super().get_urls(),
        ]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        if getattr(request, "_export_query_only", False):
            return _QueryOnlyChangeList
        return super().get_changelist(request, **kwargs)

    def export_view(self, request: HttpRequest, excel: bool = False) -> HttpResponse:
        """Everything the changelist shows under the same filters and search, as CSV."""
        if not (
            self.has_view_permission(request) and self.has_export_permission(request)
        ):
            raise PermissionDenied
        request._export_query_only = True  # type: ignore[attr-defined]
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            url = reverse("admin:submissions_formsubmission_changelist")
            return HttpResponseRedirect(f"{url}?{ERROR_FLAG}=1")
        handler = request.GET.get(HandlerNameFilter.parameter_name)
        return self.csv_response(
            changelist.queryset, options=ExportOptions(excel=excel), handler=handler
        )

    def csv_response(
        self,
        queryset: QuerySet[FormSubmission],
        *,
        options: ExportOptions,
        handler: str | None = None,
    ) -> HttpResponse:
        return submission_csv_response(
            submissions=queryset, options=options, handler_name=handler
        )

    @admin.action(description="Export selected to CSV", permissions=["export"])
    def export_as_csv(
        self, request: HttpRequest, queryset: QuerySet[FormSubmission]
    ) -> HttpResponse:
        return self.csv_response(queryset, options=ExportOptions())

    @admin.action(
        description="Export selected to CSV for Excel (UTF-8 with BOM)",
        permissions=["export"],
    )
    def export_as_csv_excel(
        self, request: HttpRequest, queryset: QuerySet[FormSubmission]
    ) -> HttpResponse:
        return self.csv_response(queryset, options=ExportOptions(excel=True))
