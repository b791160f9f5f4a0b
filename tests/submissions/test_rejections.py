"""The webhook's status map, stated once (submissions/rejections.py) and held to its docs."""

import re
from pathlib import Path

import pytest

from submissions.openapi import WEBHOOK_ERRORS
from submissions.rejections import (
    ERRORS,
    WIRE_REJECTIONS,
    Rejection,
    TokenRefused,
    UnrecognisedPayload,
    status_of,
)
from submissions.tokens import TOKEN_ERROR_CODES

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"


def _contract_rows() -> dict[str, tuple[int, str]]:
    """code -> (status, what is stored) from docs/contract.md's Errors table."""
    text = CONTRACT.read_text()
    table = text[text.index("## Errors") :]
    rows = {}
    for line in table.splitlines():
        match = re.match(r"^\| (\d{3}) \| (.+?) \| .+ \| (.+) \|$", line)
        if match:
            for code in re.findall(r"`([a-z_]+)`", match[2]):
                rows[code] = (int(match[1]), match[3])
    return rows


def test_every_code_has_one_status_and_one_class():
    codes = [code for kind in ERRORS for code in kind.codes]
    assert len(codes) == len(set(codes))
    assert set(TOKEN_ERROR_CODES) <= set(codes)


def test_the_contract_table_says_what_the_classes_say():
    rows = _contract_rows()
    assert set(rows) == {code for kind in ERRORS for code in kind.codes}
    for kind in ERRORS:
        for code in kind.codes:
            status, stored = rows[code]
            assert status == kind.status_code, code
            if kind.stored:
                assert (
                    stored.startswith(f"`{kind.stored}`")
                    or f"`{kind.stored}`" in stored
                ), code
            else:
                assert stored == "nothing stored", code


def test_the_openapi_error_table_is_built_from_the_classes():
    assert sorted(WEBHOOK_ERRORS) == sorted({kind.status_code for kind in ERRORS})
    for kind in ERRORS:
        codes, _when = WEBHOOK_ERRORS[kind.status_code]
        assert set(kind.codes) <= set(codes)
    assert status_of("body_digest_mismatch") == 401
    assert status_of("unrecognised_payload") == 422


def test_a_rejection_knows_its_reply_and_what_it_keeps():
    refused = TokenRefused("Expired.", code="token_expired", headers={"X": "1"})
    assert (refused.status_code, refused.body) == (
        401,
        {"error": "token_expired", "detail": "Expired."},
    )
    assert not refused.keeps_whole_body
    assert UnrecognisedPayload.keeps_whole_body
    assert UnrecognisedPayload.stored == "unparsed"
    with pytest.raises(ValueError, match="not 'invalid_json'"):
        TokenRefused("x", code="invalid_json")


def test_every_wire_error_is_a_rejection():
    assert all(issubclass(kind, Rejection) for kind in WIRE_REJECTIONS.values())
    assert set(WIRE_REJECTIONS) == {
        "invalid_json",
        "invalid_payload",
        "unrecognised_payload",
    }
