"""``/metrics`` and ``/readyz``, answered before host checks and the HTTPS redirect.

Like ``/healthz`` (webhookproject/health.py): a scraper or a load balancer
reaches a backend by its own address over plain HTTP. ``/metrics`` is served
only to ``Authorization: Bearer <DJANGO_METRICS_TOKEN>`` (compared in
constant time); with no token configured it does not exist (404), with a
wrong or missing one it answers 401. Both answers are JSON.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from observability.collectors import scrape_registry
from observability.readiness import readiness_response
from submissions.envelope import error_body, read_only_refusal

METRICS_PATH = "/metrics"
READY_PATH = "/readyz"


def token_matches(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def metrics_response(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        return JsonResponse(
            error_body(
                "not_found",
                "No metrics here: set DJANGO_METRICS_TOKEN to serve them.",
            ),
            status=404,
        )
    if not token_matches(request, token):
        response = JsonResponse(
            error_body(
                "invalid_token",
                "Send the metrics token as `Authorization: Bearer <token>`.",
            ),
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if (refusal := read_only_refusal(request)) is not None:
        return refusal
    response = HttpResponse(
        generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST
    )
    response["Cache-Control"] = "no-store"
    return response


class ObservabilityMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info.rstrip("/")
        if path == METRICS_PATH:
            return metrics_response(request)
        if path == READY_PATH:
            return readiness_response(request)
        return self.get_response(request)
