"""Bearer JWTs: reading them from the request, verifying and signing them.

A token is verified with the bot's current secret, then its previous one
(rotation), using only the configured HMAC algorithms; ``exp``, ``nbf`` and
``iat`` are honoured with ``JWT_LEEWAY_SECONDS`` of leeway. A ``body_sha256``
claim, when present, must be the hex SHA-256 of the raw body. Failures raise
``TokenError`` with a code and a sentence for the caller; the token itself is
never logged or stored.
"""

import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import Any

import jwt

from submissions.conf import webhook_settings

BODY_DIGEST_CLAIM = "body_sha256"
#: Every ``TokenError.code``: why a request was refused for its bearer token.
TOKEN_ERROR_CODES = (
    "missing_token",
    "malformed_token",
    "invalid_token",
    "invalid_signature",
    "token_expired",
    "token_not_yet_valid",
    "body_digest_mismatch",
)


class TokenError(Exception):
    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def bearer_token(authorization: str | None) -> str:
    """The token from an ``Authorization: Bearer <token>`` header value."""
    if not authorization:
        raise TokenError(
            "missing_token",
            "No Authorization header: send 'Authorization: Bearer <JWT>' signed with the bot's JWT secret.",
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError(
            "malformed_token",
            "The Authorization header must have the form 'Bearer <JWT>'.",
        )
    return token.strip()


def _malformed(exc: Exception) -> str:
    # PyJWT's reasons name the broken part ("Invalid header padding", "Expiration
    # Time claim (exp) must be an integer.") and never echo the token.
    reason = str(exc).rstrip(".")[:120]
    return f"The bearer token is not a well-formed JWT: {reason}."


def verify_token(
    token: str, *, secrets: Sequence[str], body: bytes, body_sha256: str = ""
) -> dict[str, Any]:
    """Return the token's claims, or raise ``TokenError``.

    ``body_sha256`` is the body's hex digest when the caller has it already
    (``IncomingRequest.body_sha256``); otherwise it is computed if a claim
    asks for it."""
    conf = webhook_settings()
    if not token.isascii():  # a JWT is base64url and dots; PyJWT would choke
        raise TokenError(
            "malformed_token",
            "The bearer token is not a well-formed JWT: it contains characters "
            "outside ASCII.",
        )
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError as exc:
        raise TokenError("malformed_token", _malformed(exc)) from None
    if not isinstance(algorithm, str):
        raise TokenError(
            "invalid_token",
            f"The token's header has no string 'alg'; "
            f"accepted algorithms: {', '.join(conf.jwt_algorithms)}.",
        )
    if algorithm not in conf.jwt_algorithms:
        raise TokenError(
            "invalid_token",
            f"Tokens signed with {algorithm[:20]!r} are not accepted; "
            f"accepted algorithms: {', '.join(conf.jwt_algorithms)}.",
        )
    claims = None
    for secret in secrets:
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=list(conf.jwt_algorithms),
                leeway=conf.jwt_leeway_seconds,
                options={
                    "require": list(conf.jwt_required_claims),
                    "verify_aud": False,
                },
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise TokenError(
                "token_expired", "The token has expired (its exp is in the past)."
            ) from None
        except jwt.ImmatureSignatureError:
            raise TokenError(
                "token_not_yet_valid",
                "The token is not valid yet (its nbf or iat is in the future).",
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(
                "invalid_token", f"The token has no {exc.claim!r} claim."
            ) from None
        except jwt.DecodeError as exc:
            raise TokenError("malformed_token", _malformed(exc)) from None
        except jwt.PyJWTError as exc:
            raise TokenError(
                "invalid_token", f"The token is not valid: {exc}."
            ) from None
    if claims is None:
        raise TokenError(
            "invalid_signature",
            "The token's signature does not match this bot's JWT secret.",
        )
    if BODY_DIGEST_CLAIM in claims:
        digest = claims[BODY_DIGEST_CLAIM]
        actual = (body_sha256 or hashlib.sha256(body).hexdigest()).encode()
        # Compared as bytes: compare_digest raises TypeError on non-ASCII str,
        # and a lone surrogate cannot be encoded (a hex digest is ASCII anyway).
        if (
            not isinstance(digest, str)
            or not digest.isascii()
            or not hmac.compare_digest(digest.lower().encode(), actual)
        ):
            raise TokenError(
                "body_digest_mismatch",
                "The body does not match the token's body_sha256 claim: it was changed after signing.",
            )
    return claims


def unverified_token_parts(authorization: str | None) -> dict[str, Any] | None:
    """A refused token's header and claims, decoded WITHOUT verification, for diagnosis.

    Never its signature, and nothing here is trusted: it shows a person what
    arrived (which algorithm, which claims, an ``exp`` in the past). None
    when there was no bearer token at all.
    """
    try:
        token = bearer_token(authorization)
    except TokenError:
        return None
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False}, algorithms=None)
    except (jwt.PyJWTError, ValueError, TypeError, UnicodeError) as exc:
        return {"error": f"Not a decodable JWT: {str(exc)[:200]}"}
    return {"header": header, "claims": claims}


def sign_token(
    secret: str,
    *,
    body: bytes | None = None,
    lifetime_seconds: int = 300,
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    """A token as logicdialog would send it; with ``body``, it carries the body's digest."""
    now = int(time.time())
    payload: dict[str, Any] = {"iat": now, "exp": now + lifetime_seconds, **claims}
    if body is not None:
        payload[BODY_DIGEST_CLAIM] = hashlib.sha256(body).hexdigest()
    return jwt.encode(payload, secret, algorithm=algorithm)
