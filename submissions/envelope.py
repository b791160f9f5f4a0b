"""The one error envelope: ``{"error": "<code>", "detail": "<sentence>"}``.

Every error this project answers, under every path (the webhook, the read
API, ``/healthz``, the edge's refusals, Django's 404 and 500 handlers),
is this JSON object: a stable machine-readable ``code`` and a ``detail`` a
person can act on.
"""

from __future__ import annotations

from django.http import JsonResponse


def error_body(code: str, detail: str) -> dict[str, str]:
    """The envelope itself."""
    return {"error": code, "detail": detail}


def error_response(
    status: int, code: str, detail: str, *, headers: dict[str, str] | None = None
) -> JsonResponse:
    """The envelope as a JSON response with ``status`` (and ``headers``)."""
    return JsonResponse(error_body(code, detail), status=status, headers=headers)
