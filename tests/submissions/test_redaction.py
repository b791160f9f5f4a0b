"""Redaction: what of a request's headers may be stored and shown."""

from __future__ import annotations

import pytest

from submissions.redaction import REDACTED, redact_headers, redact_value


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("Authorization", "Bearer abc", f"Bearer {REDACTED}"),
        ("X-Anything", "JWT abc", f"JWT {REDACTED}"),
        ("X-Anything", "eyJhbGciOiJIUzI1NiJ9.e30.x", REDACTED),
        ("X-Anything", "eyJ4Ijp7fQ.e30.", REDACTED),  # unsigned, short segments
        ("X-Webhook-Key", "plain", REDACTED),
        ("Ocp-Apim-Subscription-Key", "0123", REDACTED),
        ("Cookie", "a=b", REDACTED),
        ("Idempotency-Key", "order-1", "order-1"),
        ("Idempotency-Key", "Bearer x", f"Bearer {REDACTED}"),
        ("X-Version", "1.2.3", "1.2.3"),
        ("Host", "hooks.example.com", "hooks.example.com"),
        ("User-Agent", "node-fetch/1.0", "node-fetch/1.0"),
    ],
)
def test_redaction(name, value, stored):
    assert redact_value(name, value) == stored


def test_redact_headers_keeps_names_and_replaces_only_credentials():
    headers = redact_headers(
        {"Authorization": "Basic dXNlcjpwYXNz", "X-Version": 2, "Cookie": "a=b"}
    )

    assert headers == {
        "Authorization": f"Basic {REDACTED}",
        "X-Version": "2",
        "Cookie": REDACTED,
    }
