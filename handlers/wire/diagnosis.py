"""Which of the expected request fields a body holds, and under which spelling:
for a person connecting a bot (the bot's page in the admin).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.wire.spelling import (
    CONVERSATION_FIELDS,
    DELIVERY_FIELDS,
    FORM_FIELDS,
    HANDLER_FIELDS,
    USER_FIELDS,
)

#: The request fields a person connecting a bot looks for, with their spellings.
EXPECTED_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("handler name", HANDLER_FIELDS),
    ("form values", FORM_FIELDS),
    ("conversation id", CONVERSATION_FIELDS),
    ("user id", USER_FIELDS),
    ("delivery id", DELIVERY_FIELDS),
)


def field_spellings(payload: Any) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """For each expected field: the spelling found in ``payload`` (or None), and all."""
    found = payload if isinstance(payload, Mapping) else {}
    return [
        (what, next((name for name in names if name in found), None), names)
        for what, names in EXPECTED_FIELDS
    ]
