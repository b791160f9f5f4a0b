"""The one sanitiser between text from the wire and the database.

PostgreSQL refuses NUL in ``text`` and ``jsonb`` and refuses unpaired UTF-16
surrogates (``"\\ud800"``) anywhere; SQLite cannot encode the surrogates
either; a ``varchar(n)`` refuses more than *n* characters. Any of them would
make an insert fail after the request was accepted, losing the delivery. So
every text column of this project's models is one of the fields below, and
each passes its value through ``storable_text`` (or ``storable_json``) on
its way to the database, on ``create``, ``bulk_create``, ``save`` and
``update`` alike: no value of any field can make an insert fail.

The rule: NUL and unpaired surrogates become U+FFFD (the replacement
character), a non-finite number becomes its name as text, and text longer than the column (``max_length``, or
``MAX_TEXT_LENGTH`` for unbounded text) is cut. Lookups are left alone: a
filter value is the caller's, refused at the edge (``webhookproject.edge``).

Values that identify something (a delivery id, a handler name) are refused
before they get here instead (``handlers.wire``): replacing characters in
an id could make two different ids equal.
"""

from __future__ import annotations

import math
from typing import Any

from django.db import models

from handlers.wire.spelling import CheckedObject, RenderedReply

REPLACEMENT = "\ufffd"
#: Longest text kept in a column without a ``max_length`` (error details,
#: tracebacks, labels, answer text): a bound, far beyond any real value.
MAX_TEXT_LENGTH = 1_000_000


def storable_text(value: str, max_length: int | None = MAX_TEXT_LENGTH) -> str:
    """``value`` as any database can store it: NUL and lone surrogates replaced, cut to ``max_length``."""
    if "\x00" in value:
        value = value.replace("\x00", REPLACEMENT)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # Paired surrogates (from "surrogatepass" decoding) are rejoined;
            # what is left unpaired is replaced.
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if max_length is not None and len(value) > max_length:
        value = value[:max_length]
    return value


def storable_json(value: Any) -> Any:
    """A JSON value with every string in it (keys too) made storable.

    ``NaN`` and the infinities (which Python's JSON reads, as a token's
    claims may hold them) are not JSON: they become their names, as text.
    """
    if isinstance(value, str):
        return storable_text(value, None)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {storable_text(str(k), None): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item) for item in value]
    return value


class StorableCharField(models.CharField):
    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        if isinstance(value, str):
            value = storable_text(value, self.max_length)
        return super().get_db_prep_save(value, connection)


class StorableTextField(models.TextField):
    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        if isinstance(value, str):
            value = storable_text(value)
        return super().get_db_prep_save(value, connection)


class StorableJSONField(models.JSONField):
    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        # A rendered reply is stored as the text it was sent as, encoded once
        # (unless it holds NUL, which the sanitiser below must replace).
        if isinstance(value, RenderedReply) and "\\u0000" not in value.text:
            if connection.vendor == "postgresql":
                from psycopg.types.json import Jsonb

                return Jsonb(value, dumps=lambda _value, text=value.text: text)
            return value.text
        # A body the wire checked as it parsed it is storable already.
        if (
            value is not None
            and not isinstance(value, CheckedObject)
            and not hasattr(value, "resolve_expression")
        ):
            value = storable_json(value)
        return super().get_db_prep_save(value, connection)
