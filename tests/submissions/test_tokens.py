import base64
import json
import re
import time
from pathlib import Path

import jwt
import pytest

from submissions import tokens
from submissions.tokens import TokenError, bearer_token, sign_token, verify_token

SECRET = "s" * 43
BODY = b'{"handler": "h"}'


def test_bearer_token_parsing():
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("bearer  abc ") == "abc"
    for value, code in [
        (None, "missing_token"),
        ("", "missing_token"),
        ("Basic xyz", "malformed_token"),
        ("Bearer", "malformed_token"),
    ]:
        with pytest.raises(TokenError) as info:
            bearer_token(value)
        assert info.value.code == code


def test_valid_token_returns_its_claims():
    claims = verify_token(
        sign_token(SECRET, body=BODY, sub="bot"), secrets=[SECRET], body=BODY
    )
    assert claims["sub"] == "bot"


def test_previous_secret_is_tried_after_the_current_one():
    token = sign_token("old-secret-" * 4, body=BODY)
    assert verify_token(token, secrets=[SECRET, "old-secret-" * 4], body=BODY)
    with pytest.raises(TokenError) as info:
        verify_token(token, secrets=[SECRET], body=BODY)
    assert info.value.code == "invalid_signature"


def test_token_without_digest_claim_is_accepted_for_any_body():
    token = sign_token(SECRET)
    assert verify_token(token, secrets=[SECRET], body=b"anything")


def test_digest_claim_must_match_the_body():
    token = sign_token(SECRET, body=BODY)
    with pytest.raises(TokenError) as info:
        verify_token(token, secrets=[SECRET], body=BODY + b" ")
    assert info.value.code == "body_digest_mismatch"


def _unsigned(header, claims):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


# Each token is made when its test runs, not when the module is collected:
# a suite that runs for longer than a token's window must not change the result.
@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (
            lambda: _unsigned({"alg": "none", "typ": "JWT"}, {"sub": "x"}),
            "invalid_token",
        ),
        (lambda: jwt.encode({"a": 1}, "k" * 64, algorithm="HS512"), "invalid_token"),
        (lambda: "not-a-jwt", "malformed_token"),
        (lambda: "a.b.c", "malformed_token"),
        (lambda: sign_token(SECRET, lifetime_seconds=-120), "token_expired"),
        (
            lambda: jwt.encode(
                {"nbf": int(time.time()) + 600}, SECRET, algorithm="HS256"
            ),
            "token_not_yet_valid",
        ),
        (lambda: sign_token("another-secret-entirely-00000000"), "invalid_signature"),
    ],
    ids=[
        "alg_none",
        "foreign_algorithm",
        "not_a_jwt",
        "three_empty_parts",
        "expired",
        "not_yet_valid",
        "wrong_secret",
    ],
)
def test_refused_tokens(make_token, code):
    with pytest.raises(TokenError) as info:
        verify_token(make_token(), secrets=[SECRET], body=BODY)
    assert info.value.code == code
    assert info.value.detail


def test_leeway_tolerates_small_clock_skew(settings):
    settings.WEBHOOKS = {"JWT_LEEWAY_SECONDS": 30}
    assert verify_token(
        sign_token(SECRET, lifetime_seconds=-10), secrets=[SECRET], body=b""
    )
    settings.WEBHOOKS = {"JWT_LEEWAY_SECONDS": 0}
    with pytest.raises(TokenError):
        verify_token(
            sign_token(SECRET, lifetime_seconds=-10), secrets=[SECRET], body=b""
        )


def test_allowed_algorithms_come_from_settings_but_never_include_none_or_rsa(settings):
    settings.WEBHOOKS = {"JWT_ALGORITHMS": ["HS512", "RS256", "none"]}
    long_secret = "k" * 64
    token = jwt.encode({}, long_secret, algorithm="HS512")
    assert verify_token(token, secrets=[long_secret], body=b"") == {}
    with pytest.raises(TokenError, match="not accepted"):
        verify_token(_unsigned({"alg": "none"}, {}), secrets=[SECRET], body=b"")


def test_required_claims(settings):
    settings.WEBHOOKS = {"JWT_REQUIRED_CLAIMS": ["jti"]}
    with pytest.raises(TokenError, match="'jti'"):
        verify_token(sign_token(SECRET), secrets=[SECRET], body=b"")
    assert (
        verify_token(sign_token(SECRET, jti="1"), secrets=[SECRET], body=b"")["jti"]
        == "1"
    )


def test_every_token_error_code_is_listed_once():
    source = (Path(tokens.__file__)).read_text()
    raised = set(re.findall(r'TokenError\(\s*"([a-z_]+)"', source))
    assert raised == set(tokens.TOKEN_ERROR_CODES)
    assert len(tokens.TOKEN_ERROR_CODES) == len(set(tokens.TOKEN_ERROR_CODES))
