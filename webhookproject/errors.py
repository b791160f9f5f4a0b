"""Error pages: JSON under the machine-facing paths, Django's HTML elsewhere.

Bots (``/webhooks/``) and API clients (``/api/``) read every answer as JSON
with an ``error`` code and a ``detail`` sentence, including a URL that
matches no route and a server error that escaped every view. The admin
keeps Django's pages. Used only when ``DEBUG`` is off, as Django's own
handlers are.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

JSON_PREFIXES = ("/api/", "/webhooks/")


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES) or request.path == "/api"


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {"error": "not_found", "detail": f"Nothing is served at {request.path}."},
            status=404,
        )
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse(
            {
                "error": "server_error",
                "detail": "The server failed to answer; the failure is logged.",
            },
            status=500,
        )
    return defaults.server_error(request)
