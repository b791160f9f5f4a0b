"""Form submissions: the list staff read, each submission's answers, CSV and XLSX export."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import BooleanField, Prefetch, QuerySet, Value
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from submissions.admin.bigtable import (
    BigTableAdmin,
    ExactSearchMixin,
    HandlerNameFilter,
)
from submissions.admin.common import (
    ReadOnlyAdminMixin,
    TallyMarkingDeleteMixin,
    event_link,
    search_link,
)
from submissions.admin.personal_data import ErasureMixin
from submissions.downloads import submission_csv_response, submission_xlsx_response
from submissions.exports import ExportOptions
from submissions.masking import can_see_sensitive, is_sensitive, mask_value
from submissions.models import FormAnswer, FormSubmission
from submissions.permissions import EXPORT_FORMSUBMISSION
from submissions.selectors.search import submission_search
from submissions.values import value_as_text

#: How many answers the submission list shows per row.
FIRST_ANSWERS = 3


def _shown(submission: FormSubmission, answer: FormAnswer) -> str:
    """An answer as this user may see it: masked when sensitive, unless allowed."""
    if getattr(submission, "sensitive_visible", False) or not is_sensitive(
        key=answer.key, input_type=answer.input_type
    ):
        return value_as_text(answer.value)
    return value_as_text(mask_value(answer.value))


class _QueryOnlyChangeList(ChangeList):
    """The changelist's filters, search and ordering without its count or page."""

    def get_results(self, request: HttpRequest) -> None:
        pass


@admin.register(FormSubmission)
class FormSubmissionAdmin(
    ErasureMixin,
    TallyMarkingDeleteMixin,
    ReadOnlyAdminMixin,
    ExactSearchMixin,
    BigTableAdmin,
):
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
    search_help_text = (
        "An exact conversation id, user id or handler name, or text within an "
        "answer (3 characters or more)."
    )
    list_select_related = ["bot"]
    sortable_by = ["received"]
    actions = [
        "export_as_csv",
        "export_as_csv_excel",
        "export_as_xlsx",
        "erase_personal_data",
    ]
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
        # Whether this user sees sensitive answers, on every row (list and detail).
        visible = Value(can_see_sensitive(request.user), output_field=BooleanField())
        return (
            super()
            .get_queryset(request)
            .annotate(sensitive_visible=visible)
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

    def search(self, request: HttpRequest, queryset: QuerySet, term: str) -> QuerySet:
        """Exact matches on indexed columns, or answers containing the term
        (but for sensitive ones the user sees masked)."""
        return submission_search(
            submissions=queryset,
            term=term,
            exact=self.search_q(term),
            hide_sensitive=not can_see_sensitive(request.user),
        )

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(EXPORT_FORMSUBMISSION)

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
                (answer.key, Truncator(_shown(submission, answer)).chars(60))
                for answer in answers
            ),
        )

    # detail

    @admin.display(description="webhook event")
    def event_link(self, submission: FormSubmission) -> str:
        return event_link(submission.event_id, missing="(purged)")

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
                    _shown(submission, answer),
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
        wrap: Callable[..., Any] = self.admin_site.admin_view
        export, export_excel, export_xlsx = self._export_url_names()
        return [
            path("export/", wrap(self.export_view), name=export),
            path(
                "export/excel/",
                wrap(self.export_view),
                {"excel": True},
                name=export_excel,
            ),
            path(
                "export/xlsx/",
                wrap(self.export_view),
                {"xlsx": True},
                name=export_xlsx,
            ),
            *super().get_urls(),
        ]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        match = request.resolver_match
        if match is not None and match.url_name in self._export_url_names():
            return _QueryOnlyChangeList
        return super().get_changelist(request, **kwargs)

    def _export_url_names(self) -> tuple[str, str, str]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}_export"
        return prefix, f"{prefix}_excel", f"{prefix}_xlsx"

    def export_view(
        self, request: HttpRequest, excel: bool = False, xlsx: bool = False
    ) -> HttpResponse:
        """Everything the changelist shows under the same filters and search, as CSV or XLSX."""
        if not (
            self.has_view_permission(request) and self.has_export_permission(request)
        ):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            url = reverse("admin:submissions_formsubmission_changelist")
            return HttpResponseRedirect(f"{url}?{ERROR_FLAG}=1")
        handler = request.GET.get(HandlerNameFilter.parameter_name)
        return self.export_response(
            request,
            changelist.queryset,
            options=ExportOptions(excel=excel),
            handler=handler,
            xlsx=xlsx,
        )

    def export_response(
        self,
        request: HttpRequest,
        queryset: QuerySet[FormSubmission],
        *,
        options: ExportOptions,
        handler: str | None = None,
        xlsx: bool = False,
    ) -> HttpResponse:
        download = submission_xlsx_response if xlsx else submission_csv_response
        return download(
            submissions=queryset,
            options=options,
            handler_name=handler,
            mask_sensitive=not can_see_sensitive(request.user),
        )

    @admin.action(description="Export selected to CSV", permissions=["export"])
    def export_as_csv(
        self, request: HttpRequest, queryset: QuerySet[FormSubmission]
    ) -> HttpResponse:
        return self.export_response(request, queryset, options=ExportOptions())

    @admin.action(
        description="Export selected to CSV for Excel (UTF-8 with BOM)",
        permissions=["export"],
    )
    def export_as_csv_excel(
        self, request: HttpRequest, queryset: QuerySet[FormSubmission]
    ) -> HttpResponse:
        return self.export_response(
            request, queryset, options=ExportOptions(excel=True)
        )

    @admin.action(description="Export selected to XLSX", permissions=["export"])
    def export_as_xlsx(
        self, request: HttpRequest, queryset: QuerySet[FormSubmission]
    ) -> HttpResponse:
        return self.export_response(
            request, queryset, options=ExportOptions(), xlsx=True
        )
