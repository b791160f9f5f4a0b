"""Typed export rows: one per submission, one column per question, masking and
formula escaping applied once; pure (no database, no format).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from math import isfinite
from typing import Any

from submissions.masking import mask_value
from submissions.values import value_as_text

FIXED_COLUMNS: tuple[str, ...] = (
    "submission_id",
    "received_at",
    "bot",
    "handler",
    "conversation_id",
    "user_id",
)


#: Characters that start a formula, in ASCII and full width.
FORMULA_CHARS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")


#: A cell beginning with one of these is escaped (each is one character).
FORMULA_PREFIXES: tuple[str, ...] = (*sorted(FORMULA_CHARS), "\t", "\r", "\n")


_FORMULA_FIRST = frozenset(FORMULA_PREFIXES)


# A plain decimal number: a spreadsheet reads it as a number, never a formula.
NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


#: One typed cell of ``export_rows``: the CSV writes its text, the XLSX its type.
Cell = str | int | float | bool | datetime | None


#: Answer types a cell keeps as they are; any other becomes text.
_KEPT_TYPES = frozenset({str, int, float, bool, type(None)})


@dataclass(frozen=True, slots=True)
class ExportOptions:
    labels: bool = False  # head question columns with labels instead of keys
    excel: bool = False  # start with a UTF-8 byte order mark
    escape_formulas: bool = True
    #: Question keys whose answers are masked (submissions.masking).
    masked_keys: frozenset[str] = frozenset()


#: The options of an export that asks for none.
DEFAULT_OPTIONS = ExportOptions()


@dataclass(frozen=True, slots=True)
class ExportColumn:
    """One question column: its key, the label to show with ``labels``, its type."""

    key: str
    label: str = ""
    input_type: str = ""


@dataclass(frozen=True, slots=True)
class ExportSubmission:
    """What one CSV row needs; ``answers`` maps question key to JSON value."""

    id: int
    submitted_at: datetime
    bot: str
    handler_name: str
    conversation_id: str
    user_id: str
    answers: Mapping[str, Any] = field(default_factory=dict)


def _formula_like(text: str) -> bool:
    first = text[:1]
    if first in _FORMULA_FIRST:
        return True
    return first.isspace() and text.lstrip()[:1] in FORMULA_CHARS


def escape_formula(text: str) -> str:
    """``text`` made inert for spreadsheets: a formula-like start gets a ``'``."""
    if _formula_like(text) and not NUMBER_RE.fullmatch(text):
        return "'" + text
    return text


def unique_headings(names: Sequence[str]) -> list[str]:
    """Question headings that repeat no fixed column and no earlier heading."""
    taken = set(FIXED_COLUMNS)
    out = []
    for name in names:
        heading, number = name, 1
        while heading in taken:
            heading = (
                f"{name} (question)" if number == 1 else f"{name} (question {number})"
            )
            number += 1
        taken.add(heading)
        out.append(heading)
    return out


def cell(value: Any, *, escape_formulas: bool = True) -> str:
    """One answer as CSV cell text (numbers untouched, formulas escaped)."""
    text = value_as_text(value)
    return escape_formula(text) if escape_formulas else text


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def header_row(
    columns: Sequence[ExportColumn], *, options: ExportOptions = DEFAULT_OPTIONS
) -> list[str]:
    """The header: fixed columns, then keys, or labels made unique with the key."""
    if not options.labels:
        names = [column.key for column in columns]
    else:
        labels = [column.label.strip() or column.key for column in columns]
        repeated = {label for label, n in Counter(labels).items() if n > 1}
        names = [
            f"{label} ({column.key})" if label in repeated else label
            for label, column in zip(labels, columns, strict=True)
        ]
    if options.escape_formulas:
        names = [escape_formula(name) for name in names]
    return [*FIXED_COLUMNS, *unique_headings(names)]


def export_rows(
    *,
    columns: Sequence[ExportColumn],
    submissions: Iterable[ExportSubmission],
    options: ExportOptions = DEFAULT_OPTIONS,
) -> Iterator[list[Cell]]:
    """The header (text), then one row of typed cells per submission.

    The one place where answers become cells, for every format: masking and
    formula escaping happen here, once. ``submission_id`` is an ``int``,
    ``received_at`` an aware ``datetime`` in UTC; JSON strings, integers,
    finite floats and booleans keep their type; lists (joined with ``"; "``)
    and objects (compact JSON) become text, as do infinities and NaN (no
    spreadsheet holds them); a missing answer or JSON ``null`` is ``None``.
    Only text is formula-escaped: a number is never a formula.
    Answers outside ``columns`` are dropped.
    """
    yield header_row(columns, options=options)
    escape = options.escape_formulas
    keys = [column.key for column in columns]
    masked = options.masked_keys
    # The loops below are ``cell`` and ``escape_formula`` inlined: a million
    # rows make millions of cells, and a function call per cell shows.
    formula_start = _FORMULA_FIRST
    formula_like = _formula_like
    number = NUMBER_RE.fullmatch
    kept = _KEPT_TYPES
    for submission in submissions:
        answers = submission.answers
        row: list[Cell] = [
            submission.id,
            submission.submitted_at.astimezone(UTC),
            submission.bot,
            submission.handler_name,
            submission.conversation_id,
            submission.user_id,
        ]
        for key in keys:
            if key in answers:
                value = answers[key]
                if key in masked:
                    value = mask_value(value)
                if type(value) not in kept or (
                    type(value) is float and not isfinite(value)
                ):
                    value = value_as_text(value)
                row.append(value)
            else:
                row.append(None)
        if escape:
            for i in range(2, len(row)):
                text = row[i]
                if type(text) is not str:
                    continue
                first = text[:1]
                if (
                    first in formula_start or (first.isspace() and formula_like(text))
                ) and not number(text):
                    row[i] = "'" + text
        yield row
