"""What of a request's headers may be kept: credentials never are.

``redact_headers(headers)`` is applied at intake (``submissions.incoming``),
again by the read API when it shows stored headers (``api.serializers``),
and by the data generator (``bench``), so every stored header went through
it. ``redact_value(name, value)`` decides one header: by its name (anything
named like a credential) or by the value's shape (an auth scheme, a JWT, a
known API key, secrets in a URL).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from handlers.wire import REQUEST_HEADERS

REDACTED = "[redacted]"
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


def redact_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """Request headers for storage or display, credentials replaced."""
    return {
        str(name): redact_value(str(name), str(value))
        for name, value in headers.items()
    }
