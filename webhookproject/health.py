"""`/healthz`: is this web process able to serve? (200 or 503, JSON either way).

A load balancer polls it to decide where to send bots' deliveries. It answers
from a middleware at the top of the stack, before host validation and the
HTTPS redirect: a health probe usually comes over plain HTTP with the
backend's own address in ``Host``, and neither should turn "healthy" into a
400 or a 301. Nothing else is reachable this way, and the body says only
whether the database answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import Error, connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from handlers.wire import error_body

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"


def database_ok(alias: str = "default") -> bool:
    """One round trip to the database; False (logged) when it does not answer."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Error:  # any database failure, InterfaceError included
        logger.warning("healthz: database %r unreachable", alias, exc_info=True)
        return False
    return True


def health_response(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse(
            error_body("method_not_allowed", "Use GET or HEAD."), status=405
        )
        response["Allow"] = "GET, HEAD"
        return response
    ok = database_ok()
    response = JsonResponse(
        {"status": "ok" if ok else "unavailable", "database": ok},
        status=200 if ok else 503,
    )
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    """Answers ``/healthz`` (with or without a trailing slash) itself."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.rstrip("/") == HEALTH_PATH:
            return health_response(request)
        return self.get_response(request)
