"""Error pages: JSON under the machine-facing paths, Django's HTML elsewhere.

Bots (``/webhooks/``) and API clients (``/api/``) read every answer as JSON
with an ``error`` code and a ``detail`` sentence, including a URL that
matches no route and a server error that escaped every view. The admin
keeps Django's pages. ``handler404``/``handler500`` serve when ``DEBUG`` is
off; ``webhookproject.edge`` turns Django's debug pages into the same JSON
when it is on.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from submissions.envelope import error_response

JSON_PREFIXES = ("/api/", "/webhooks/")

#: Status → (error code, detail) for errors that no view described itself.
STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be understood."),
    403: ("forbidden", "You do not have permission to do this."),
    404: ("not_found", "Nothing is served at {path}."),
    405: ("method_not_allowed", "{method} is not allowed at {path}."),
    413: ("payload_too_large", "The request is too large."),
    500: ("server_error", "The server failed to answer; the failure is logged."),
}


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES) or request.path in (
        "/api",
        "/webhooks",
    )


def json_error(request: HttpRequest, status: int) -> JsonResponse:
    """The JSON error for ``status`` (``server_error`` for any other 5xx)."""
    code, detail = STATUS_ERRORS.get(
        status,
        STATUS_ERRORS[500] if status >= 500 else ("client_error", "Request refused."),
    )
    detail = detail.format(path=request.path[:200], method=request.method)
    return error_response(status, code, detail)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if wants_json(request):
        return json_error(request, 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if wants_json(request):
        return json_error(request, 500)
    return defaults.server_error(request)
