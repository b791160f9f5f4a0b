"""Sensitive answers, masked for staff who may not see them.

An answer is sensitive when its question type (``email``, ``phone``...) or
its key is listed in ``WEBHOOKS["SENSITIVE_INPUT_TYPES"]`` /
``["SENSITIVE_KEYS"]``. Staff without ``submissions.view_sensitive_answers``
see it masked (``z***@example.com``, ``+44 *** *** 123``) in the admin, the
read API and every export, and wherever an event's payload, reply, errors or
runs repeat it (``event_redactor``); a search never matches it for them
(``sensitive_answer_q``), and raw bodies are withheld from them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Q

from handlers.wire import WireError, parse_delivery
from submissions.conf import webhook_settings
from submissions.permissions import VIEW_SENSITIVE_ANSWERS
from submissions.values import value_as_text

EMAIL_RE = re.compile(r"([^@\s])[^@\s]*@(\S+)")
PHONE_RE = re.compile(r"\+?[\d\s().-]{6,}")
COUNTRY_CODE_RE = re.compile(r"\+\d{1,3}")


def can_see_sensitive(user: Any) -> bool:
    return bool(user is not None and user.has_perm(VIEW_SENSITIVE_ANSWERS))


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
    return mask_text(value_as_text(value))


def mask_text(text: str) -> str:
    """``mask_value`` of a value (not None, not ``""``) whose text is ``text``."""
    text = text.strip()
    email = EMAIL_RE.fullmatch(text)
    if email:
        return f"{email[1]}***@{email[2]}"
    digits = re.sub(r"\D", "", text)
    if PHONE_RE.fullmatch(text) and len(digits) >= 6:
        country = COUNTRY_CODE_RE.match(text)
        prefix = f"{country.group()} " if country else ""
        return f"{prefix}*** *** {digits[-3:]}"
    return f"{text[:1]}***"


# --- what else repeats an answer -----------------------------------------------------

#: Leaves of a payload that does not parse shorter than this are not looked for
#: in its texts (a digit would mask every digit of a traceback).
MIN_GUESSED_LENGTH = 3


def sensitive_answer_q() -> Q:
    """Answers that are, or may be, sensitive, as a filter on ``FormAnswer``.

    ``is_sensitive`` compares Python's ``lower()``; SQL's case folding differs
    outside ASCII (``K``, the Kelvin sign, lowers to ``k``), so a key or type
    with any non-ASCII character counts as sensitive here: a search never
    finds an answer the pages mask.
    """
    conf = webhook_settings()
    q = Q(key__regex=r"[^\x01-\x7f]") | Q(input_type__regex=r"[^\x01-\x7f]")
    for key in conf.sensitive_keys:
        q |= Q(key__iexact=key)
    for input_type in conf.sensitive_input_types:
        q |= Q(input_type__iexact=input_type)
    return q


def _spellings(value: Any) -> set[str]:
    """How an answer may be repeated in a reply, an error or a traceback."""
    if value is None or value == "" or isinstance(value, bool):
        return set()
    if isinstance(value, list):
        return set().union(*(_spellings(item) for item in value))
    if isinstance(value, dict):
        return set().union(*(_spellings(item) for item in value.values()))
    text = value_as_text(value).strip()
    if not text:
        return set()
    return {text, json.dumps(text)[1:-1], repr(text)[1:-1]} - {""}


class Redactor:
    """One event's sensitive answers masked wherever its stored texts repeat them.

    ``text`` masks every occurrence (any case) of an answer, as given or as
    JSON or ``repr`` spell it, in a string; ``json`` does it in every string
    of a JSON value, and masks a number equal to an answer. ``everything``
    (a payload that does not parse as a delivery: which values are answers is
    unknown) masks every leaf of a JSON value. A handler that transforms an
    answer before echoing it (reverses it, say) is not caught: such texts are
    the handler's.
    """

    def __init__(self, values: Iterable[Any] = (), *, everything: bool = False):
        self.everything = everything
        self.texts = set().union(*(_spellings(v) for v in values)) if values else set()
        ordered = sorted(self.texts, key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)
            if ordered
            else None
        )

    @property
    def is_empty(self) -> bool:
        return not self.texts and not self.everything

    def text(self, text: str) -> str:
        if not text or self._pattern is None:
            return text
        return self._pattern.sub(lambda match: str(mask_value(match.group())), text)

    def json(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {self.text(str(k)): self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(item) for item in value]
        if value is None or isinstance(value, bool):
            return value
        if self.everything:
            return mask_value(value)
        if isinstance(value, str):
            return self.text(value)
        if value_as_text(value) in self.texts:
            return mask_value(value)
        return value


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif value is not None and not isinstance(value, bool):
        yield value


def event_redactor(event: Any) -> Redactor:
    """What to mask in ``event``'s payload, reply, errors and runs for staff
    who may not see its sensitive answers: its answers, read from its payload
    as the intake read them."""
    payload = event.payload
    if not isinstance(payload, dict):
        return Redactor()
    try:
        delivery = parse_delivery(payload, headers=event.headers or {})
    except (WireError, TypeError, ValueError):
        guessed = [
            v for v in _leaves(payload) if len(value_as_text(v)) >= MIN_GUESSED_LENGTH
        ]
        return Redactor(guessed, everything=True)
    return Redactor(
        answer.value
        for answer in delivery.answers
        if is_sensitive(key=answer.key, input_type=answer.input_type)
    )
