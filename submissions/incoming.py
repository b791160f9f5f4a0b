"""One HTTP request, read once: its body (bounded), its headers (redacted), its id.

``read_incoming(request)`` is all the intake needs of Django's request. The
body is never read beyond ``MAX_BODY_BYTES`` plus one byte, whether the
length is declared (``Content-Length``) or the body comes in chunks
(``Transfer-Encoding: chunked``, read from the server's decoded
``wsgi.input``; ``runserver`` decodes chunks too, see
``submissions.devserver``). The headers are stored through
``submissions.redaction.redact_headers``: credentials never are, by header
name or by the value's shape.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone
from django.utils.http import parse_header_parameters

from handlers.wire import MAX_ID_LENGTH, REQUEST_HEADERS
from submissions.conf import webhook_settings
from submissions.redaction import redact_headers, redact_value

#: The largest value a ``body_size`` column holds (a signed 64-bit integer).
MAX_STORED_SIZE = 2**63 - 1
#: WSGI environ keys set by this project's servers (webhookproject/wsgi.py,
#: submissions/devserver.py): the Content-Type Django could not parse, and
#: why a chunked body could not be decoded.
ORIGINAL_CONTENT_TYPE = "webhooks.original_content_type"
BODY_ERROR = "webhooks.body_error"
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
    #: Why the body could not be read (malformed chunks), if it could not.
    body_error: str = ""
    request_id: str = ""
    #: Hex SHA-256 of the body when it was read whole ("" otherwise): hashed
    #: once, for the token's ``body_sha256`` claim and the stored event.
    body_sha256: str = ""

    def __repr__(self) -> str:  # never print the credential
        return f"<IncomingRequest {self.body_size} bytes at {self.received_at:%Y-%m-%dT%H:%M:%S}>"


def credential_free(name: str, value: str) -> str:
    """An identifier from header ``name``, safe to store and show.

    A value that redaction would hide (a JWT sent as an ``Idempotency-Key``)
    is replaced by its SHA-256, so it still identifies the delivery exactly
    (the same value, the same id) without being readable back.
    """
    if len(value) > MAX_ID_LENGTH or redact_value(name, value) == value:
        return value  # too long to be an id: the wire format refuses it as sent
    return (
        "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    )


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
    length_required, body_error = False, ""
    original_type = request.META.get(ORIGINAL_CONTENT_TYPE)
    if original_type is not None:  # Django could not parse it (webhookproject.wsgi)
        content_type, content_params = original_type, {}
    if request.META.get(BODY_ERROR):  # the development server's chunk decoding
        body_error = str(request.META[BODY_ERROR])
    if declared is not None and declared > conf.max_body_bytes:
        raw = request.read(conf.rejected_body_bytes)
        size, complete = min(declared, MAX_STORED_SIZE), False
    elif _chunked(request):
        stream = request.META.get("wsgi.input")
        if stream is None:  # ASGI: the server hands over the whole body
            raw = request.read(conf.max_body_bytes + 1)
        elif request.META.get("wsgi.input_terminated"):
            # The server decodes the chunks (gunicorn): read to the end. A
            # malformed chunk raises the server's own error class.
            try:
                raw = stream.read(conf.max_body_bytes + 1)
            except Exception as exc:  # noqa: BLE001 - gunicorn's parse errors
                raw, body_error = b"", f"{type(exc).__name__}: {exc}"[:200]
        else:
            raw, length_required = b"", True
        size, complete = len(raw), True
    else:
        raw = request.read(conf.max_body_bytes + 1)
        size, complete = len(raw), True
    headers = redact_headers(request.headers)
    if original_type is not None:
        headers["Content-Type"] = original_type
    return IncomingRequest(
        received_at=timezone.now(),
        raw_body=raw,
        body_size=size,
        body_complete=complete,
        headers=headers,
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
        body_error=body_error,
        request_id=request_id(request),
        body_sha256=hashlib.sha256(raw).hexdigest() if complete else "",
    )
