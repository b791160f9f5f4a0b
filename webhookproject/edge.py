"""What every request meets first, before Django's own middleware.

Three promises are kept here, in debug mode as in production:

- **A Host outside ``ALLOWED_HOSTS``** is a JSON 400 ``disallowed_host``,
  never Django's HTML page. A webhook URL of a known bot is stored and
  refused by ``submissions.views.webhook_refuse_host`` (the rest of the
  middleware would raise before the view could); the Host is checked here
  only, once per request.
- **A NUL character in a query string or a path** (a changelist search or
  filter, an admin URL) is a 400, never a 500 from a database that refuses
  NUL. The read API refuses
  it itself, naming the parameter; webhook URLs read no query string.
- **A Content-Type with NUL in it** would crash Django before any
  middleware runs (``codecs.lookup`` of its charset raises ``ValueError``):
  ``webhookproject.wsgi`` replaces the NUL first, so the webhook answers 415 and
  stores the request. The development server passes such headers on.
- **A database that is not migrated** (a fresh checkout, a release deployed
  without ``migrate``) is a 503 that says to run ``manage.py migrate``,
  not a debug page or a bare 500.
- **Under** ``/webhooks/`` **and** ``/api/`` every error is JSON
  (``{"error", "detail"}``): Django's HTML pages (its debug pages included)
  are replaced by ``webhookproject.errors.json_error``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import BadRequest, DisallowedHost
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from submissions.envelope import error_response
from submissions.views import webhook_refuse_host
from webhookproject.errors import json_error, wants_json

security_logger = logging.getLogger("django.security.DisallowedHost")

WEBHOOK_URL_NAMES = ("webhook", "webhook-no-slash")


def _webhook_slug(request: HttpRequest) -> str | None:
    """The bot slug of a webhook URL (resolved only for a refused Host: a
    delivery's URL is resolved once, by Django)."""
    if not request.path_info.startswith("/webhooks/"):
        return None
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    return match.kwargs["bot_slug"] if match.url_name in WEBHOOK_URL_NAMES else None


def _has_nul(request: HttpRequest) -> bool:
    if not request.META.get("QUERY_STRING"):
        return False
    return any(
        "\x00" in key or any("\x00" in value for value in values)
        for key, values in request.GET.lists()
    )


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


class EdgeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.get_host()
        except DisallowedHost as exc:
            security_logger.warning("%s", exc, extra={"status_code": 400})
            slug = _webhook_slug(request)
            if slug is not None:
                return webhook_refuse_host(request, slug)
            return error_response(400, "disallowed_host", str(exc)[:300])
        if not wants_json(request) and (
            "\x00" in request.path_info or _has_nul(request)
        ):
            raise BadRequest("The URL contains a NUL character (%00).")
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and wants_json(request)
            and not _is_json(response)
        ):
            return json_error(request, response.status_code)
        return response

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if not (isinstance(exception, DatabaseError) and _missing_table(exception)):
            return None
        detail = (
            "The database is not migrated: run `python manage.py migrate` "
            "(`make run` does it)."
        )
        if wants_json(request):
            return error_response(503, "not_migrated", detail)
        return HttpResponse(
            detail, status=503, content_type="text/plain; charset=utf-8"
        )


def _missing_table(exception: Exception) -> bool:
    """SQLite's "no such table", PostgreSQL's "relation ... does not exist"."""
    text = str(exception)
    return "no such table" in text or ("relation" in text and "does not exist" in text)
