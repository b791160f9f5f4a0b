import csv
import io
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from submissions.exports import (
    BOM,
    FIXED_COLUMNS,
    ExportColumn,
    ExportOptions,
    ExportSubmission,
    cell,
    csv_chunks,
    csv_lines,
    csv_rows,
    escape_formula,
    export_filename,
    export_rows,
)

WHEN = datetime(2025, 3, 1, 12, 30, 5, tzinfo=UTC)


def sub(answers: dict[str, Any], pk: int = 1, **fields: Any) -> ExportSubmission:
    defaults: dict[str, Any] = {
        "id": pk,
        "submitted_at": WHEN,
        "bot": "demo",
        "handler_name": "save-form",
        "conversation_id": "c-1",
        "user_id": "u-1",
    }
    return ExportSubmission(**{**defaults, **fields}, answers=answers)


def cols(*keys: str) -> list[ExportColumn]:
    return [ExportColumn(key=key, label=key.title()) for key in keys]


def export_text(
    columns: list[ExportColumn],
    submissions: list[ExportSubmission],
    options: ExportOptions | None = None,
) -> str:
    options = options or ExportOptions()
    rows = csv_rows(columns=columns, submissions=submissions, options=options)
    return "".join(csv_chunks(rows, excel=options.excel))


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix(BOM), newline="")))


# --- the pure row generator -------------------------------------------------------


def test_header_is_fixed_columns_then_question_keys():
    rows = list(csv_rows(columns=cols("name", "age"), submissions=[]))

    assert rows == [[*FIXED_COLUMNS, "name", "age"]]
    assert FIXED_COLUMNS == (
        "submission_id",
        "received_at",
        "bot",
        "handler",
        "conversation_id",
        "user_id",
    )


def test_row_has_fixed_fields_in_utc_iso_8601_then_answers_by_column():
    local = WHEN.astimezone(ZoneInfo("Europe/Paris"))
    rows = list(
        csv_rows(
            columns=cols("name", "age"),
            submissions=[sub({"age": 42, "name": "Ada"}, pk=7, submitted_at=local)],
        )
    )

    assert rows[1] == [
        "7",
        "2025-03-01T12:30:05+00:00",
        "demo",
        "save-form",
        "c-1",
        "u-1",
        "Ada",
        "42",
    ]


def test_commas_quotes_and_newlines_are_quoted_per_rfc_4180():
    text = export_text(
        cols("a", "b", "c"),
        [sub({"a": "x, y", "b": 'say "hi"', "c": "line 1\nline 2"})],
    )

    lines = text.split("\r\n")
    assert lines[1].endswith(',"x, y","say ""hi""","line 1\nline 2"')
    assert lines[2] == ""  # every record ends with CRLF, the last one too
    assert parse(text)[1][6:] == ["x, y", 'say "hi"', "line 1\nline 2"]


def test_unicode_round_trips_and_excel_adds_a_bom():
    answers = {"name": "Zoë Ångström", "city": "東京", "mood": "🙂"}
    plain = export_text(cols(*answers), [sub(answers)])
    excel = export_text(cols(*answers), [sub(answers)], ExportOptions(excel=True))

    assert not plain.startswith(BOM)
    assert excel.startswith(BOM)
    assert excel.encode("utf-8")[:3] == b"\xef\xbb\xbf"
    assert parse(plain)[1][6:] == ["Zoë Ångström", "東京", "🙂"]
    assert parse(excel) == parse(plain)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        (["=a", "b"], "'=a; b"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_formula_like_text_is_prefixed_with_a_quote(value, expected):
    assert cell(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(-5, "-5"), ("-5", "-5"), (-1.25, "-1.25"), ("+3", "+3"), ("-1e-3", "-1e-3")],
)
def test_numbers_stay_numbers(value, expected):
    assert cell(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        " =1+2",
        "  +1+2",
        "\t\t@SUM(A1)",
        "\u00a0=1+1",  # no-break space
        "\u3000-1-1",  # ideographic space
        "\n=1+2",
        "\nplain text after a line feed",
        "\r\n=cmd",
        "\uff1d1+2",  # full-width equals
        "\uff0bcmd",
        "\uff0d2+3",
        "\uff20SUM(A1)",
        " \uff1dHYPERLINK(1)",
        " -2+3",
    ],
)
def test_formula_after_whitespace_in_full_width_or_after_a_line_feed_is_escaped(
    value,
):
    assert cell(value) == "'" + value
    row = next(
        r
        for i, r in enumerate(
            csv_rows(columns=cols("q"), submissions=[sub({"q": value})])
        )
        if i == 1
    )
    assert row[-1] == "'" + value


@pytest.mark.parametrize("value", [" plain", "  spaced words", "\u00a0x", "a =b"])
def test_whitespace_before_ordinary_text_is_left_alone(value):
    assert cell(value) == value


@pytest.mark.parametrize("labels", [False, True])
def test_a_question_named_like_a_fixed_column_gets_its_own_heading(labels):
    columns = [
        ExportColumn(key="submission_id", label="submission_id"),
        ExportColumn(key="bot", label="bot"),
        ExportColumn(key="bot (question)", label="bot (question)"),
        ExportColumn(key="name", label="Name"),
    ]
    rows = list(
        csv_rows(
            columns=columns,
            submissions=[sub({"submission_id": "S-9", "bot": "B", "name": "Ada"})],
            options=ExportOptions(labels=labels),
        )
    )
    header = rows[0]
    assert len(header) == len(set(header)), header
    assert header[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    assert header[len(FIXED_COLUMNS) :] == [
        "submission_id (question)",
        "bot (question)",
        "bot (question) (question)",
        "Name" if labels else "name",
    ]
    by_heading = dict(zip(header, rows[1], strict=True))
    assert by_heading["submission_id"] == "1"
    assert by_heading["submission_id (question)"] == "S-9"
    assert by_heading["bot"] == "demo"
    assert by_heading["bot (question)"] == "B"


def test_headings_stay_unique_after_formula_escaping():
    columns = [ExportColumn(key="=x"), ExportColumn(key="'=x")]
    header = next(csv_rows(columns=columns, submissions=[]))
    assert header[len(FIXED_COLUMNS) :] == ["'=x", "'=x (question)"]


def test_formula_escaping_can_be_turned_off_and_covers_every_text_cell():
    submission = sub({"q": "=1+2"}, user_id="=evil()", conversation_id="@x")
    columns = [ExportColumn(key="q", label="=label")]

    escaped = list(
        csv_rows(
            columns=columns,
            submissions=[submission],
            options=ExportOptions(labels=True),
        )
    )
    raw = list(
        csv_rows(
            columns=columns,
            submissions=[submission],
            options=ExportOptions(labels=True, escape_formulas=False),
        )
    )

    assert escaped[0][-1] == "'=label"
    assert escaped[1][4:] == ["'@x", "'=evil()", "'=1+2"]
    assert raw[0][-1] == "=label"
    assert raw[1][4:] == ["@x", "=evil()", "=1+2"]
    assert escape_formula("=x") == "'=x"


def test_nested_values_lists_and_objects():
    answers = {
        "tags": ["red", "green", "blue"],
        "address": {"street": "1 Main St", "city": "Zürich"},
        "matrix": [[1, 2], [3]],
        "agree": True,
        "nothing": None,
    }

    row = list(csv_rows(columns=cols(*answers), submissions=[sub(answers)]))[1]

    assert row[6:] == [
        "red; green; blue",
        '{"street":"1 Main St","city":"Zürich"}',
        "1; 2; 3",
        "true",
        "",
    ]


def test_missing_answers_are_empty_and_unknown_keys_are_dropped():
    rows = list(
        csv_rows(
            columns=cols("a", "b", "c"),
            submissions=[sub({"a": "1"}, pk=1), sub({"c": "3", "zzz": "x"}, pk=2)],
        )
    )

    assert [row[6:] for row in rows[1:]] == [["1", "", ""], ["", "", "3"]]


def test_labels_head_the_columns_and_repeated_labels_are_told_apart():
    columns = [
        ExportColumn(key="email", label="Email"),
        ExportColumn(key="email_address", label="Email"),
        ExportColumn(key="age", label=""),
    ]

    header = next(
        csv_rows(columns=columns, submissions=[], options=ExportOptions(labels=True))
    )

    assert header[6:] == ["Email (email)", "Email (email_address)", "age"]


def test_csv_lines_and_chunks_are_the_same_text():
    rows = [["a", "b,c"], ["d", "e"]] * 1000
    lines = list(csv_lines(rows))
    chunks = list(csv_chunks(rows, chunk_chars=1000))

    assert lines[0] == 'a,"b,c"\r\n'
    assert len(chunks) > 1
    assert "".join(chunks) == "".join(lines)


def test_thousands_of_submissions_stream_row_by_row():
    columns = cols("n", "text")
    submissions = (sub({"n": i, "text": f"row {i}, ok"}, pk=i) for i in range(5000))

    rows = parse(export_text(columns, list(submissions)))

    assert len(rows) == 5001
    assert rows[-1][0] == "4999"
    assert rows[-1][6:] == ["4999", "row 4999, ok"]


# --- typed rows, shared by CSV and XLSX ------------------------------------------


def test_export_rows_keep_json_types_and_make_the_rest_text():
    answers = {
        "zip": "01234",
        "big": 12345678901234567890,
        "n": 42,
        "f": 3.5,
        "inf": float("inf"),
        "yes": True,
        "tags": ["a", "b"],
        "obj": {"a": 1},
        "null": None,
        "formula": "=1+1",
    }
    columns = cols(*answers, "missing")
    local = WHEN.astimezone(ZoneInfo("Europe/Paris"))

    header, row = export_rows(
        columns=columns, submissions=[sub(answers, pk=7, submitted_at=local)]
    )

    assert header == [*FIXED_COLUMNS, *answers, "missing"]
    assert row[:6] == [7, WHEN, "demo", "save-form", "c-1", "u-1"]
    assert row[1].tzinfo is UTC
    assert [(type(value), value) for value in row[6:]] == [
        (str, "01234"),
        (int, 12345678901234567890),
        (int, 42),
        (float, 3.5),
        (str, "inf"),
        (bool, True),
        (str, "a; b"),
        (str, '{"a":1}'),
        (type(None), None),
        (str, "'=1+1"),
        (type(None), None),
    ]


def test_export_rows_mask_and_escape_text_only():
    answers = {"email": "ada@example.com", "n": -5, "text": "-5+1", "pin": 1234}
    options = ExportOptions(masked_keys=frozenset({"email", "pin"}))

    row = list(
        export_rows(columns=cols(*answers), submissions=[sub(answers)], options=options)
    )[1]

    assert row[6:] == ["a***@example.com", -5, "'-5+1", "1***"]


def test_csv_rows_are_the_text_of_export_rows():
    answers = {"n": 42, "f": -1.5e-05, "yes": False, "inf": float("-inf"), "x": None}

    typed = list(export_rows(columns=cols(*answers), submissions=[sub(answers)]))[1]
    text = list(csv_rows(columns=cols(*answers), submissions=[sub(answers)]))[1]

    assert typed[6:] == [42, -1.5e-05, False, "'-inf", None]
    assert text == [
        "1",
        "2025-03-01T12:30:05+00:00",
        *typed[2:6],
        "42",
        "-1.5e-05",
        "false",
        "'-inf",
        "",
    ]


def test_export_filename():
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

    assert export_filename(now=now) == "submissions-20250102-030405.csv"
    assert (
        export_filename(handler_name='save "form"/x', now=now)
        == "submissions-save-form-x-20250102-030405.csv"
    )


# --- against the database ------------------------------------------------------
