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

from handlers.wire import MAX_ID_LENGTH, REQUEST_HEADERS
from submissions.conf import webhook_settings

REDACTED = "[redacted]"
#: The largest value a ``body_size`` column holds (a signed 64-bit integer).
MAX_STORED_SIZE = 2**63 - 1
#: Header names whose values are credentials (Authorization, Cookie, X-Api-Key,
#: X-Auth-Token, X-Hub-Signature, X-Shopify-Hmac-Sha256, X-Webhook-Key,
#: Ocp-Apim-Subscription-Key, X-Pwd...): any name containing one of these.
SECRET_HEADER_RE = re.compile(
    r"auth|cookie|token|secret|pass|pwd|cred|session|sig|hmac|otp|assertion|jwt"
    r"|key",
    re.IGNORECASE,
)
#: Headers whose names match the above but whose values are identifiers the
#: wire format documents (kept unless the value itself looks like a credential).
NOT_SECRET_HEADERS = frozenset(name.lower() for name in REQUEST_HEADERS)
#: An HTTP auth scheme followed by something, anywhere a value may start one:
#: at its start, after a comma (two headers joined), a quote or a bracket.
AUTH_SCHEME_RE = re.compile(
    r"(?:^|(?<=[\s,;\"'(\[]))"
    r"(bearer|basic|token|digest|negotiate|jwt|apikey|api-key|key|hmac|hawk|ntlm"
    r"|oauth|bot|ssws|signature|aws|aws4-hmac-sha256|dpop|sharedaccesssignature)"
    r"(?:\s+|\s*[:=]\s*)[^\s,]",
    re.IGNORECASE,
)
#: Three (JWS) or five (JWE) base64 segments, URL-safe or not, padded or not;
#: a JWT when the first decodes to a JSON object, however short they are.
#: Possessive quantifiers keep the scan linear in the value's length.
JWT_CANDIDATE_RE = re.compile(
    r"(?<![A-Za-z0-9_+/=-])[A-Za-z0-9_+/-]++=*+(?:\.[A-Za-z0-9_+/-]*+=*+){2,4}"
)
#: Prefixes of well-known API keys (GitHub, GitLab, Slack, Stripe, AWS...).
KNOWN_TOKEN_RE = re.compile(
    r"\b(?:gh[pousr]_|github_pat_|glpat-|xox[abeprs]-|[sr]k_(?:live|test)_"
    r"|AKIA[0-9A-Z]{12}|AIza[0-9A-Za-z_-]{20})"
)
#: Secrets inside a URL: user:password@, and query parameters named like one.
URL_USERINFO_RE = re.compile(r"(?<=://)[^/\s@]*:[^/\s@]*@")
URL_SECRET_PARAM_RE = re.compile(
    r"(?<=[?&;])([^=&;#\s]*(?:token|key|secret|pass|pwd|auth|sig|code|session)"
    r"[^=&;#\s]*=)[^&;#\s]*",
    re.IGNORECASE,
)
#: Longest stretch of a value scanned for credentials; a longer value is
#: redacted whole (no real header value is this long).
MAX_SCANNED = 8192
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


def _looks_like_jwt(value: str) -> bool:
    for match in JWT_CANDIDATE_RE.finditer(value):
        first = match.group().split(".", 1)[0].rstrip("=")
        try:
            decoded = (
                base64.b64decode(first + "=" * (-len(first) % 4), altchars=b"-_")
                if "-" in first or "_" in first
                else base64.b64decode(first + "=" * (-len(first) % 4))
            )
        except (binascii.Error, ValueError):
            continue
        if decoded.lstrip().startswith(b"{"):
            return True
    return False


def redact_value(name: str, value: str) -> str:
    """``value`` as stored under header ``name``: a credential becomes ``[redacted]``.

    A value that is one credential with its scheme word keeps the word
    (``Bearer [redacted]``), so the admin still shows what kind came; a value
    that hides one anywhere (two headers joined, a quoted scheme, a JWT, a
    known API key) is redacted whole; secrets in a URL (``user:pass@``, a
    ``?access_token=``) are cut out of it.
    """
    stripped = value.strip()
    if name.lower() not in NOT_SECRET_HEADERS and SECRET_HEADER_RE.search(name):
        scheme = AUTH_SCHEME_RE.match(stripped)
        return f"{scheme.group(1)} {REDACTED}" if scheme else REDACTED
    if len(stripped) > MAX_SCANNED:
        return REDACTED
    scheme = AUTH_SCHEME_RE.search(stripped)
    if scheme:
        whole = scheme.start() == 0 and "," not in stripped
        return f"{scheme.group(1)} {REDACTED}" if whole else REDACTED
    if _looks_like_jwt(stripped) or KNOWN_TOKEN_RE.search(stripped):
        return REDACTED
    if "://" in value or "=" in value:
        value = URL_USERINFO_RE.sub(f"{REDACTED}@", value)
        value = URL_SECRET_PARAM_RE.sub(rf"\g<1>{REDACTED}", value)
    return value


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
