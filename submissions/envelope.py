"""The one error envelope: ``{"error": "<code>", "detail": "<sentence>"}``.

Every error this project answers, under every path (the webhook, the read
API, ``/healthz``, the edge's refusals, Django's 404 and 500 handlers),
is this JSON object: a stable machine-readable ``code`` and a ``detail`` a
person can act on.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse


def error_body(code: str, detail: str) -> dict[str, str]:
    """The envelope itself."""
    return {"error": code, "detail": detail}


def error_response(
    status: int, code: str, detail: str, *, headers: dict[str, str] | None = None
) -> JsonResponse:
    """The envelope as a JSON response with ``status`` (and ``headers``)."""
    return JsonResponse(error_body(code, detail), status=status, headers=headers)


def read_only_refusal(request: Any) -> JsonResponse | None:
    """405 ``method_not_allowed`` (with ``Allow``) for anything but GET and
    HEAD, as the probe and metrics endpoints answer; None for those two."""
    if request.method in ("GET", "HEAD"):
        return None
    return error_response(
        405, "method_not_allowed", "Use GET or HEAD.", headers={"Allow": "GET, HEAD"}
    )
