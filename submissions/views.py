"""The webhook endpoint: ``POST /webhooks/<bot-slug>/`` (the trailing slash optional).

Glue only: find the bot, read the request once (``submissions.incoming``),
hand it to ``submissions.intake`` and render what comes back. The Host is
checked once, by ``webhookproject.edge``, which hands a webhook request
with a bad Host to ``webhook_refuse_host``. Every request
to a known bot is stored, whatever its method or Host header, and answered
with ``X-Webhook-Event-Id``. No session authentication, so no CSRF check:
the bearer JWT is the credential. Every error is
``{"error": code, "detail": sentence}``.
"""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpResponse
from rest_framework.exceptions import APIException
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from handlers.wire import RenderedReply
from submissions.envelope import error_body
from submissions.incoming import read_incoming
from submissions.intake import (
    IntakeResult,
    webhook_delivery_receive,
    webhook_request_refuse,
)
from submissions.rejections import (
    DisallowedHost,
    MethodNotAllowed,
    Rejection,
    UnknownBot,
)
from submissions.selectors.bots import bot_get_active


class AlwaysJSON(BaseContentNegotiation):
    """The bot gets JSON whatever its Accept header says (never a 406)."""

    def select_parser(self, request: Request, parsers: list[Any]) -> None:
        return None

    def select_renderer(
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ):
        return renderers[0], renderers[0].media_type


class WebhookView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    parser_classes: list[Any] = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = AlwaysJSON

    def post(self, request: Request, bot_slug: str) -> HttpResponse:
        return self._receive(request, bot_slug, refusal=None)

    def http_method_not_allowed(
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        refusal = MethodNotAllowed(
            f"This webhook URL accepts POST only, not {request.method[:20]}.",
            headers={"Allow": "POST"},
        )
        return self._receive(request, kwargs["bot_slug"], refusal=refusal)

    # DRF answers OPTIONS with metadata; a bot has no use for it, so it is
    # refused and stored like any other method but POST.
    options = http_method_not_allowed

    @property
    def allowed_methods(self) -> list[str]:  # DRF's `Allow` header
        return ["POST"]

    def _receive(
        self, request: Request, bot_slug: str, *, refusal: Rejection | None
    ) -> HttpResponse:
        return webhook_receive(request, bot_slug, refusal=refusal)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, APIException):
            return Response(
                error_body(exc.default_code, str(exc.detail)), status=exc.status_code
            )
        return super().handle_exception(exc)


def webhook_receive(
    request: Any, bot_slug: str, *, refusal: Rejection | None = None
) -> HttpResponse:
    """One request to ``bot_slug``'s webhook URL, stored and answered.

    The Host was checked once, by ``webhookproject.edge``: a request with a
    Host outside ``ALLOWED_HOSTS`` comes through ``webhook_refuse_host``.
    """
    started = time.perf_counter()
    bot = bot_get_active(slug=bot_slug)
    if bot is None:
        return Response(
            error_body(
                UnknownBot.code,
                f"No active bot has the webhook URL slug {bot_slug[:100]!r}.",
            ),
            status=UnknownBot.status_code,
        )
    incoming = read_incoming(request)
    if refusal is None:
        result = webhook_delivery_receive(bot=bot, incoming=incoming, started=started)
    else:
        result = webhook_request_refuse(
            bot=bot, incoming=incoming, started=started, refusal=refusal
        )
    return _render(result)


def webhook_refuse_host(request: Any, bot_slug: str) -> Any:
    """A request to a webhook URL with a Host outside ``ALLOWED_HOSTS``: stored
    and refused, 400 ``disallowed_host`` (called by the edge, before the rest
    of the middleware would raise on the Host)."""
    host = request.META.get("HTTP_HOST", "")
    refusal = DisallowedHost(
        f"The Host header {host[:100]!r} is not one this server answers to "
        "(DJANGO_ALLOWED_HOSTS); send the request to the server's own name."
    )
    response = webhook_receive(Request(request), bot_slug, refusal=refusal)
    if not isinstance(response, Response):
        return response
    response.accepted_renderer = JSONRenderer()
    response.accepted_media_type = JSONRenderer.media_type
    response.renderer_context = {}
    return response.render()


def _render(result: IntakeResult) -> HttpResponse:
    headers = dict(result.headers)
    if result.event is not None:
        headers["X-Webhook-Event-Id"] = str(result.event.pk)
    if isinstance(result.body, RenderedReply):  # a handler's reply, encoded once
        return HttpResponse(
            result.body.text.encode(),
            status=result.status_code,
            headers=headers,
            content_type="application/json",
        )
    return Response(result.body, status=result.status_code, headers=headers)
