"""`/healthz`: is this web process able to serve? (200 or 503, JSON either way).

A load balancer polls it to decide where to send bots' deliveries. It answers
from a middleware at the top of the stack, before host validation and the
HTTPS redirect: a health probe usually comes over plain HTTP with the
backend's own address in ``Host``, and neither should turn "healthy" into a
400 or a 301. Nothing else is reachable this way, and the body says only
whether the database answered and is migrated (a release deployed without
``migrate`` is not healthy).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.db import Error, connections
from django.db.migrations.loader import MigrationLoader
from django.http import HttpRequest, HttpResponse, JsonResponse

from submissions.envelope import read_only_refusal

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"


@functools.cache
def latest_migrations() -> tuple[tuple[str, str], ...]:
    """The newest migration of every app, read from the code once per process."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return tuple(sorted(loader.graph.leaf_nodes()))


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


def database_migrated(alias: str = "default") -> bool:
    """Whether every app's newest migration is applied (one query)."""
    wanted = latest_migrations()
    try:
        with connections[alias].cursor() as cursor:
            marks = ", ".join(["(%s, %s)"] * len(wanted))
            cursor.execute(
                "SELECT COUNT(*) FROM django_migrations "  # noqa: S608 - placeholders
                f"WHERE (app, name) IN ({marks})",
                [part for node in wanted for part in node],
            )
            (applied,) = cursor.fetchone()
    except Error:  # no django_migrations table: never migrated
        return False
    return applied == len(wanted)


def health_response(request: HttpRequest) -> HttpResponse:
    if (refusal := read_only_refusal(request)) is not None:
        return refusal
    reachable = database_ok()
    migrated = reachable and database_migrated()
    body: dict[str, object] = {
        "status": "ok" if migrated else "unavailable",
        "database": reachable,
    }
    if reachable and not migrated:
        body["migrated"] = False
        body["detail"] = "The database is not migrated: run `manage.py migrate`."
    response = JsonResponse(body, status=200 if migrated else 503)
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
