"""Sensitive answers, masked for staff who may not see them.

An answer is sensitive when its question type (``email``, ``phone``...) or
its key is listed in ``WEBHOOKS["SENSITIVE_INPUT_TYPES"]`` /
``["SENSITIVE_KEYS"]``. Staff without ``submissions.view_sensitive_answers``
see it masked (``z***@example.com``, ``+44 *** *** 123``) in the admin, the
read API and every export.
"""

from __future__ import annotations

import re
from typing import Any

from submissions.conf import webhook_settings
from submissions.values import value_as_text

SENSITIVE_PERMISSION = "submissions.view_sensitive_answers"
EMAIL_RE = re.compile(r"([^@\s])[^@\s]*@(\S+)")
PHONE_RE = re.compile(r"\+?[\d\s().-]{6,}")
COUNTRY_CODE_RE = re.compile(r"\+\d{1,3}")


def can_see_sensitive(user: Any) -> bool:
    return bool(user is not None and user.has_perm(SENSITIVE_PERMISSION))


def is_sensitive(*, key: str, input_type: str = "") -> bool:
    conf = webhook_settings()
    return (
        input_type.lower() in conf.sensitive_input_types
        or key.lower() in conf.sensitive_keys
    )


def mask_value(value: Any) -> Any:
    """``value`` with only enough left to tell answers apart; empty stays empty."""
    if value is None or value == "":
        return value
    text = value_as_text(value).strip()
    email = EMAIL_RE.fullmatch(text)
    if email:
        return f"{email[1]}***@{email[2]}"
    digits = re.sub(r"\D", "", text)
    if PHONE_RE.fullmatch(text) and len(digits) >= 6:
        country = COUNTRY_CODE_RE.match(text)
        prefix = f"{country.group()} " if country else ""
        return f"{prefix}*** *** {digits[-3:]}"
    return f"{text[:1]}***"
