"""OpenAPI documentation the read API's views share: their error responses.

The webhook endpoint documents itself in ``submissions/openapi.py``.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
)
from rest_framework import serializers

# --- the read API's errors -------------------------------------------------------


class ApiErrorSerializer(serializers.Serializer):
    """Every read API error: a code, a ``detail`` sentence, and per-parameter messages on 400."""

    error = serializers.CharField(
        help_text=(
            "A stable code: `invalid_query`, `not_authenticated`, "
            "`authentication_failed`, `permission_denied`, `not_found`, "
            "`method_not_allowed` or `not_acceptable`."
        )
    )
    detail = serializers.CharField(help_text="What went wrong, in a sentence.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="On 400: the messages for each invalid query parameter.",
    )

    class Meta:
        ref_name = "ApiError"


ErrorResponses = dict[tuple[int, str], OpenApiResponse]


def api_errors(**descriptions: str) -> ErrorResponses:
    """Error responses: JSON whatever format was asked for (``e401="..."``)."""
    return {
        (int(status.removeprefix("e")), "application/json"): OpenApiResponse(
            response=ApiErrorSerializer, description=description
        )
        for status, description in descriptions.items()
    }


API_ERRORS = api_errors(
    e401="No credentials, or an unknown token; with `WWW-Authenticate: Token`.",
    e403="The user lacks the model's view permission (or, for CSV and XLSX, the export one).",
)
LIST_ERRORS = {
    **api_errors(
        e400="A filter, page size or export option is invalid.",
        e404="The cursor is invalid, or the format unknown.",
    ),
    **API_ERRORS,
}
DETAIL_ERRORS = {**api_errors(e404="No such record."), **API_ERRORS}
ID_PARAMETER = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The record's id."
)
