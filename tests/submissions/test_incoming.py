"""Reading one request: declared lengths, request ids, delivery ids kept apart."""

from __future__ import annotations

import hashlib

import pytest
from django.test import RequestFactory

from submissions.incoming import (
    MAX_STORED_SIZE,
    credential_free,
    declared_length,
    read_incoming,
    request_id,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("order-17", "order-17"),
        ("Bearer abc", "sha256:" + hashlib.sha256(b"Bearer abc").hexdigest()),
    ],
)
def test_a_delivery_id_shaped_like_a_credential_is_kept_as_its_digest(value, expected):
    assert credential_free("Idempotency-Key", value) == expected
    assert credential_free("Idempotency-Key", "Bearer abd") != credential_free(
        "Idempotency-Key", "Bearer abc"
    )


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("12", 12),
        (" 12 ", 12),
        ("", None),
        ("-1", None),
        ("+5", None),
        ("1_0", None),
        ("\u0665", None),  # an Arabic-Indic digit: int() would take it
        ("9" * 39, int("9" * 39)),
        ("9" * 40, MAX_STORED_SIZE + 1),
    ],
)
def test_declared_length(text, length):
    assert declared_length(text) == length


@pytest.mark.parametrize(
    ("given", "echoed"),
    [
        ("req-1", True),
        ("a" * 100, True),
        ("a" * 101, False),
        ("a b", False),
        ("a\x00", False),
    ],
)
def test_request_id_echoes_only_plain_ids(given, echoed):
    request = RequestFactory().post("/", HTTP_X_REQUEST_ID=given)
    made = request_id(request)
    assert (made == given) == echoed
    assert made


def test_a_huge_declared_length_is_capped_to_what_a_column_holds(settings):
    body = b"x" * 70_000
    request = RequestFactory().generic(
        "POST", "/", data=body, content_type="application/json"
    )
    request.META["CONTENT_LENGTH"] = str(10**30)
    incoming = read_incoming(request)
    assert incoming.body_size == MAX_STORED_SIZE
    assert not incoming.body_complete
    assert len(incoming.raw_body) == 64 * 1024
