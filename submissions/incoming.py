"""One HTTP request, read once: its body (bounded), its headers (redacted), its id.

``read_incoming(request)`` is all the intake needs of Django's request. The
body is never read beyond ``MAX_BODY_BYTES`` plus one byte, whether the
length is declared (``Content-Length``) or the body comes in chunks
(``Transfer-Encoding: chunked``, read from the server's decoded
``wsgi.input``; ``runserver`` decodes chunks too, see
``submissions.devserver``). ``redact_headers`` decides what of the headers
is kept: credentials never are, by header name or by the value's shape.
The read API shows stored headers through it again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.http import parse_header_parameters

from handlers.wire import REQUEST_HEADERS
from submissions.conf import webhook_settings

REDACTED = "[redacted]"
#: The largest value a ``body_size`` column holds (a signed 64-bit integer).
MAX_STORED_SIZE = 2**63 - 1
#: Header names whose values are credentials (Authorization, Cookie, X-Api-Key,
#: X-Auth-Token, X-Hub-Signature, X-Jwt-Assertion, X-Webhook-Key,
#: Ocp-Apim-Subscription-Key...): any name containing one of these words.
SECRET_HEADER_RE = re.compile(
    r"auth|cookie|token|secret|passw|credential|session|signature|assertion|jwt"
    r"|key",
    re.IGNORECASE,
)
#: Headers whose names match the above but whose values are identifiers the
#: wire format documents (kept unless the value itself looks like a credential).
NOT_SECRET_HEADERS = frozenset(name.lower() for name in REQUEST_HEADERS)
#: A value that starts with an HTTP auth scheme followed by something.
AUTH_SCHEME_RE = re.compile(
    r"(bearer|basic|token|digest|negotiate|jwt|apikey|api-key|key|hmac|hawk|ntlm"
    r"|oauth|aws4-hmac-sha256|sharedaccesssignature)\s+\S",
    re.IGNORECASE,
)
#: Three (JWS) or five (JWE) base64url segments; a JWT when the first decodes
#: to a JSON object, however short the segments are.
JWT_CANDIDATE_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){2,4}")
#: A caller's request id is echoed only when it is this plain.
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,100}")


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    """What the intake needs from one HTTP request, read once.

    ``headers`` are for storage, credentials already redacted. Two things are
    kept apart: ``authorization``, raw, to verify the token and never
    stored, and ``wire_headers``, the headers the wire format reads (the
    delivery id) as sent, so that redaction can never make two different
    deliveries look alike (one that looks like a credential is kept as its
    SHA-256, see ``credential_free``).
    """

    received_at: datetime
    raw_body: bytes
    body_size: int
    headers: Mapping[str, str]
    authorization: str | None
    content_type: str
    charset: str | None
    remote_addr: str | None
    body_complete: bool = True
    wire_headers: Mapping[str, str] = field(default_factory=dict)
    #: ``Transfer-Encoding: chunked`` that the server did not decode for us.
    length_required: bool = False
    request_id: str = ""

    def __repr__(self) -> str:  # never print the credential
        return f"<IncomingRequest {self.body_size} bytes at {self.received_at:%Y-%m-%dT%H:%M:%S}>"


def _looks_like_jwt(value: str) -> bool:
    for match in JWT_CANDIDATE_RE.finditer(value):
        first = match.group().split(".", 1)[0]
        try:
            decoded = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))
        except (binascii.Error, ValueError):
            continue
        if decoded.lstrip().startswith(b"{"):
            return True
    return False


def redact_value(name: str, value: str) -> str:
    """``value`` as stored under header ``name``: a credential becomes ``[redacted]``.

    An auth scheme word keeps its name (``Bearer [redacted]``), so the admin
    still shows what kind of credential came.
    """
    stripped = value.strip()
    if AUTH_SCHEME_RE.match(stripped):
        return f"{stripped.split(None, 1)[0]} {REDACTED}"
    if _looks_like_jwt(stripped):
        return REDACTED
    if name.lower() not in NOT_SECRET_HEADERS and SECRET_HEADER_RE.search(name):
        return REDACTED
    return value


def credential_free(name: str, value: str) -> str:
    """An identifier from header ``name``, safe to store and show.

    A value that redaction would hide (a JWT sent as an ``Idempotency-Key``)
    is replaced by its SHA-256, so it still identifies the delivery exactly
    (the same value, the same id) without being readable back.
    """
    if redact_value(name, value) == value:
        return value
    return (
        "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    )


def redact_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """Request headers for storage or display, credentials replaced."""
    return {
        str(name): redact_value(str(name), str(value))
        for name, value in headers.items()
    }


def declared_length(value: str | None) -> int | None:
    """A ``Content-Length`` as a number of bytes; None when absent or not digits."""
    value = (value or "").strip()
    if not value.isascii() or not value.isdigit():
        return None
    return int(value) if len(value) < 40 else MAX_STORED_SIZE + 1


def request_id(request: HttpRequest) -> str:
    """The caller's ``X-Request-ID`` when it is plain, else a new one."""
    given = request.headers.get("X-Request-ID", "")
    return given if REQUEST_ID_RE.fullmatch(given) else uuid.uuid4().hex


def _ip_address(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value or ""))
    except ValueError:  # a unix socket's peer, or nothing
        return None


def _chunked(request: HttpRequest) -> bool:
    if request.META.get("CONTENT_LENGTH"):
        return False
    return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()


def read_incoming(request: HttpRequest) -> IncomingRequest:
    """Read the body once, never more than the cap plus one byte.

    ``request`` is Django's, or DRF's (which passes these reads through).

    A declared ``Content-Length`` over the cap is not read beyond what a
    rejected event keeps for audit; the size recorded is the declared one
    (capped at what the column holds).
    """
    conf = webhook_settings()
    content_type, content_params = parse_header_parameters(
        request.META.get("CONTENT_TYPE", "")
    )
    declared = declared_length(request.META.get("CONTENT_LENGTH"))
    length_required = False
    if declared is not None and declared > conf.max_body_bytes:
        raw = request.read(conf.rejected_body_bytes)
        size, complete = min(declared, MAX_STORED_SIZE), False
    elif _chunked(request):
        stream = request.META.get("wsgi.input")
        if stream is None:  # ASGI: the server hands over the whole body
            raw = request.read(conf.max_body_bytes + 1)
        elif request.META.get("wsgi.input_terminated"):
            # The server decoded the chunks (gunicorn, devserver): read to the end.
            raw = stream.read(conf.max_body_bytes + 1)
        else:
            raw, length_required = b"", True
        size, complete = len(raw), True
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
        content_type=content_type,
        charset=content_params.get("charset"),
        remote_addr=_ip_address(request.META.get("REMOTE_ADDR")),
        wire_headers={
            name: credential_free(name, request.headers[name])
            for name in REQUEST_HEADERS
            if name in request.headers
        },
        length_required=length_required,
        request_id=request_id(request),
    )
