"""The read API: form submissions (with their answers) and webhook events.

Read only, cursor-paginated newest first, filtered like the admin. Reading
needs the model's ``view`` permission; the submissions CSV and XLSX
(``?format=csv``, ``?format=xlsx``) need the export permission too. Every
error is JSON with a ``detail`` sentence.
"""

from typing import Any

from django.db.models import F, Prefetch, QuerySet
from django.http import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler

from api.filters import SubmissionFilter, WebhookEventFilter
from api.pagination import EventCursorPagination, SubmissionCursorPagination
from api.permissions import EXPORT_FORMATS, CanExportCSV, ViewModelPermissions
from api.renderers import CSVRenderer, XLSXRenderer
from api.schema import DETAIL_ERRORS, ID_PARAMETER, LIST_ERRORS
from api.serializers import (
    FormSubmissionSerializer,
    WebhookEventDetailSerializer,
    WebhookEventSerializer,
)
from submissions.downloads import submission_csv_response, submission_xlsx_response
from submissions.envelope import error_body
from submissions.exports import XLSX_CONTENT_TYPE, ExportOptions
from submissions.masking import can_see_sensitive
from submissions.models import FormAnswer, FormSubmission, WebhookEvent


def _messages(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_messages(item) for item in value)
    if isinstance(value, dict):
        return " ".join(f"{name}: {_messages(item)}" for name, item in value.items())
    return str(value)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, answering ``{"error": code, "detail": sentence}`` like the webhook.

    ``error`` is DRF's machine-readable code (``not_authenticated``,
    ``authentication_failed``, ``permission_denied``, ``not_found``,
    ``method_not_allowed``, ``not_acceptable``); a 400 is ``invalid_query``,
    with DRF's per-parameter messages under ``errors`` summed up in
    ``detail``: ``{"error": "invalid_query", "detail": "Invalid query
    parameters: since: ...", "errors": {"since": ["..."]}}``.
    """
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data:
        detail = data["detail"]
        response.data = error_body(
            getattr(detail, "code", None) or "error", str(detail)
        )
    else:
        response.data = {
            **error_body(
                "invalid_query", f"Invalid query parameters: {_messages(data)}"
            ),
            "errors": data,
        }
    return response


class ReadOnlyAPIViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [ViewModelPermissions]

    def get_exception_handler(self) -> Any:
        return api_exception_handler

    def finalize_response(
        self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        # An error answers in JSON even when CSV was asked for.
        renderer = getattr(request, "accepted_renderer", None)
        if getattr(response, "exception", False) and not isinstance(
            renderer, JSONRenderer
        ):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class CSVOptionsSerializer(serializers.Serializer):
    """The export's options; ``context["format"]`` is the format asked for."""

    labels = serializers.BooleanField(
        default=False,
        help_text=(
            "CSV and XLSX only: head question columns with their labels, not "
            "their keys."
        ),
    )
    excel = serializers.BooleanField(
        default=False,
        help_text=(
            "CSV only: start with a UTF-8 byte order mark for spreadsheet "
            "programs (an XLSX file needs none)."
        ),
    )

    def validate_excel(self, value: bool) -> bool:
        if value and self.context.get("format") == "xlsx":
            raise serializers.ValidationError(
                "excel=true is for CSV (a byte order mark); an XLSX file needs none."
            )
        return value


@extend_schema_view(
    list=extend_schema(
        summary="List form submissions, or export them as CSV or XLSX",
        description=(
            "Newest first, each with its answers in form order, a page at a time "
            "(follow `next`). With `format=csv` (or `Accept: text/csv`): every "
            "matching submission, oldest first, as the admin's and "
            "`export_submissions`' CSV file, unpaginated. With `format=xlsx` (or "
            f"`Accept: {XLSX_CONTENT_TYPE}`): the same rows as an XLSX workbook "
            "with typed cells (numbers, booleans, `received_at` as a UTC "
            "date-time, text as text), sent once it is complete. Both need the "
            "`submissions.export_formsubmission` permission too."
        ),
        parameters=[CSVOptionsSerializer],
        responses={
            (200, "application/json"): FormSubmissionSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="One row per submission, one column per question key.",
            ),
            (200, XLSX_CONTENT_TYPE): OpenApiResponse(
                OpenApiTypes.BINARY,
                description=(
                    "An XLSX workbook: the CSV's rows and columns, typed cells, "
                    "a frozen header row."
                ),
            ),
            **LIST_ERRORS,
        },
        tags=["submissions"],
    ),
    retrieve=extend_schema(
        summary="One form submission with its answers",
        parameters=[ID_PARAMETER],
        responses={200: FormSubmissionSerializer, **DETAIL_ERRORS},
        tags=["submissions"],
    ),
)
class SubmissionViewSet(ReadOnlyAPIViewSet):
    """Form submissions, newest first, each with its answers in form order."""

    queryset = FormSubmission.objects.select_related("bot").prefetch_related(
        Prefetch("answers", queryset=FormAnswer.objects.order_by("position"))
    )
    serializer_class = FormSubmissionSerializer
    filterset_class = SubmissionFilter
    pagination_class = SubmissionCursorPagination
    permission_classes = [ViewModelPermissions, CanExportCSV]

    def get_renderers(self) -> list[BaseRenderer]:
        if self.action == "list":
            return [JSONRenderer(), CSVRenderer(), XLSXRenderer()]
        return [JSONRenderer()]

    def list(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        file_format = request.accepted_renderer.format
        if file_format not in EXPORT_FORMATS:
            return super().list(request, *args, **kwargs)
        options = CSVOptionsSerializer(
            data=request.query_params, context={"format": file_format}
        )
        options.is_valid(raise_exception=True)
        download = (
            submission_xlsx_response
            if file_format == "xlsx"
            else submission_csv_response
        )
        # The filters apply; the pagination does not: the file has every match.
        return download(
            submissions=self.filter_queryset(self.get_queryset()),
            options=ExportOptions(**options.validated_data),
            handler_name=request.query_params.get("handler"),
            mask_sensitive=not can_see_sensitive(request.user),
        )


@extend_schema_view(
    list=extend_schema(
        summary="List webhook events",
        description=(
            "Every delivery received, accepted or not, newest first, a page at a "
            "time (follow `next`). Headers are shown with credentials redacted; "
            "the raw body is on each event's own page."
        ),
        responses={200: WebhookEventSerializer(many=True), **LIST_ERRORS},
        tags=["events"],
    ),
    retrieve=extend_schema(
        summary="One webhook event, with its raw body",
        parameters=[ID_PARAMETER],
        responses={200: WebhookEventDetailSerializer, **DETAIL_ERRORS},
        tags=["events"],
    ),
)
class WebhookEventViewSet(ReadOnlyAPIViewSet):
    """Every delivery received, accepted or not, newest first."""

    serializer_class = WebhookEventSerializer
    filterset_class = WebhookEventFilter
    pagination_class = EventCursorPagination
    queryset = WebhookEvent.objects.all()

    def get_queryset(self) -> QuerySet[WebhookEvent]:
        events = (
            WebhookEvent.objects.select_related("bot")
            .annotate(submission_id=F("submission__id"))
            .order_by("-received_at", "-id")
        )
        if self.action == "list":
            # Bodies can be 1 MiB each; the list never shows them.
            events = events.defer("raw_body")
        return events

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action == "retrieve":
            return WebhookEventDetailSerializer
        return WebhookEventSerializer
