"""The webhook endpoint: ``POST /webhooks/<bot-slug>/``.

Glue only: find the bot, read the body once (bounded), hand both to
``submissions.intake.webhook_delivery_receive`` and render what it returns.
No session authentication, so no CSRF check: the bearer JWT is the
credential. Every error is ``{"error": code, "detail": sentence}``.
"""

import re
import time
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from rest_framework.exceptions import APIException, MethodNotAllowed
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from handlers.wire import error_body
from submissions.conf import webhook_settings
from submissions.intake import webhook_delivery_receive
from submissions.selectors import bot_get_active
from submissions.services import IncomingRequest

REDACTED = "[redacted]"
#: Header names whose values are credentials (Authorization, Cookie, X-Api-Key,
#: X-Auth-Token, X-Hub-Signature, X-Jwt-Assertion, X-Client-Key...).
SECRET_HEADER_RE = re.compile(
    r"auth|cookie|token|secret|passw|credential|session|signature|assertion|jwt"
    r"|(?:api|access|client|private|secret)[-_]?key",
    re.IGNORECASE,
)
#: Values that are credentials whatever their header: an HTTP auth scheme
#: followed by something, or a JWT's three base64url segments.
AUTH_SCHEME_RE = re.compile(r"(bearer|basic|token|digest|negotiate)\s+\S", re.I)
JWT_RE = re.compile(r"[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}")


class AlwaysJSON(BaseContentNegotiation):
    """The bot gets JSON whatever its Accept header says (never a 406)."""

    def select_parser(self, request: Request, parsers: list[Any]) -> None:
        return None

    def select_renderer(
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ):
        return renderers[0], renderers[0].media_type


def redact_headers(headers: Any) -> dict[str, str]:
    """Request headers for storage, credentials replaced (the auth scheme is kept).

    A value is a credential when its header's name says so, or when it looks
    like one (``Bearer ...``, ``Basic ...``, a JWT) under any name.
    NUL characters become U+FFFD: PostgreSQL cannot store them in JSON.
    """
    out = {}
    for name, value in headers.items():
        stripped = value.strip()
        scheme = AUTH_SCHEME_RE.match(stripped)
        if scheme:
            value = f"{stripped.split(None, 1)[0]} {REDACTED}"
        elif SECRET_HEADER_RE.search(name) or JWT_RE.fullmatch(stripped):
            value = REDACTED
        out[name.replace("\x00", "\ufffd")] = value.replace("\x00", "\ufffd")
    return out


def read_incoming(request: HttpRequest) -> IncomingRequest:
    """Read the body once, never more than the cap plus one byte.

    A declared Content-Length over the cap is not read beyond what a rejected
    event keeps for audit.
    """
    conf = webhook_settings()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > conf.max_body_bytes:
        raw = request.read(conf.rejected_body_bytes)
        size, complete = declared, False
    else:
        raw = request.read(conf.max_body_bytes + 1)
        size, complete = len(raw), True
    return IncomingRequest(
        received_at=timezone.now(),
        raw_body=raw,
        body_size=size,
        body_complete=complete,
        headers=redact_headers(request.headers),
        authorization=request.headers.get("Authorization"),
        content_type=request.content_type or "",
        charset=request.content_params.get("charset"),
        remote_addr=request.META.get("REMOTE_ADDR") or None,
    )


class WebhookView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    parser_classes: list[Any] = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = AlwaysJSON

    def post(self, request: Request, bot_slug: str) -> Response:
        started = time.perf_counter()
        bot = bot_get_active(slug=bot_slug)
        if bot is None:
            return Response(
                error_body(
                    "unknown_bot",
                    f"No active bot has the webhook URL slug {bot_slug!r}.",
                ),
                status=404,
            )
        result = webhook_delivery_receive(
            bot=bot, incoming=read_incoming(request._request), started=started
        )
        headers = {"X-Webhook-Event-Id": str(result.event.pk), **result.headers}
        return Response(result.body, status=result.status_code, headers=headers)

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, MethodNotAllowed):
            return Response(
                error_body("method_not_allowed", "This webhook URL accepts POST only."),
                status=405,
            )
        if isinstance(exc, APIException):
            return Response(
                error_body(exc.default_code, str(exc.detail)), status=exc.status_code
            )
        return super().handle_exception(exc)
