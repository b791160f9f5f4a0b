"""The XLSX export: typed cells read back with openpyxl, the sheet's layout."""

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl.utils import get_column_letter

from submissions.downloads import submission_xlsx_response
from submissions.exports import (
    FIXED_COLUMNS,
    XLSX_MAX_COLUMNS,
    XLSX_MAX_WIDTH,
    XLSX_WIDTH_SAMPLE,
    ExportColumn,
    ExportOptions,
    ExportSubmission,
    csv_chunks,
    csv_rows,
    export_rows,
    xlsx_write,
)
from submissions.models import FormSubmission
from tests.factories import bulk_submissions, submission_with_answers
from tests.spreadsheets import downloaded, typed, values, workbook
from tests.submissions.test_exports import cols, sub

WHEN = datetime(2026, 11, 28, 9, 30, 5, tzinfo=UTC)

#: Each tricky answer, and the (data type, value) it must read back as.
TRICKY = {
    "zip": ("01234", ("s", "01234")),
    "exponent": ("1e5", ("s", "1e5")),
    "date": ("2026-11-28", ("s", "2026-11-28")),
    "number_text": ("42", ("s", "42")),
    "error_text": ("#N/A", ("s", "#N/A")),
    "boolean_text": ("TRUE", ("s", "TRUE")),
    "percent": ("50%", ("s", "50%")),
    "int": (42, ("n", 42)),
    "negative": (-5, ("n", -5)),
    "float": (3.5, ("n", 3.5)),
    "fifteen_digits": (123456789012345, ("n", 123456789012345)),
    "twenty_digits": (12345678901234567890, ("s", "12345678901234567890")),
    "negative_long": (-1234567890123456, ("s", "-1234567890123456")),
    "round_big": (10**20, ("n", 10**20)),
    "beyond_doubles": (10**400, ("s", "1" + "0" * 400)),
    "true": (True, ("b", True)),
    "false": (False, ("b", False)),
    "formula": ("=1+1", ("s", "'=1+1")),
    "minus_formula": ("-2+3", ("s", "'-2+3")),
    "infinity": (float("inf"), ("s", "inf")),
    "list": (["a", "b"], ("s", "a; b")),
    "object": ({"n": 1, "city": "Zürich"}, ("s", '{"n":1,"city":"Zürich"}')),
    "null": (None, ("n", None)),
    "empty": ("", ("n", None)),
}


def xlsx(
    columns: list[ExportColumn],
    submissions: list[ExportSubmission],
    options: ExportOptions | None = None,
    **kwargs: Any,
) -> bytes:
    out = io.BytesIO()
    rows = export_rows(
        columns=columns, submissions=submissions, options=options or ExportOptions()
    )
    xlsx_write(rows, out, **kwargs)
    return out.getvalue()


def csv_of(columns, submissions, options=None) -> list[list[str]]:
    rows = csv_rows(
        columns=columns, submissions=submissions, options=options or ExportOptions()
    )
    return list(csv.reader(io.StringIO("".join(csv_chunks(rows)), newline="")))


# --- cells ---------------------------------------------------------------------


def test_every_cell_has_its_own_type():
    answers = {key: value for key, (value, _) in TRICKY.items()}
    sheet = workbook(
        xlsx(cols(*answers), [sub(answers, pk=7, submitted_at=WHEN)])
    ).active

    row = typed(sheet, 2)

    assert row[:6] == [
        ("n", 7),
        ("d", WHEN.replace(tzinfo=None)),
        ("s", "demo"),
        ("s", "save-form"),
        ("s", "c-1"),
        ("s", "u-1"),
    ]
    assert dict(zip(answers, row[6:], strict=True)) == {
        key: expected for key, (_, expected) in TRICKY.items()
    }


@pytest.mark.parametrize("key", ["zip", "exponent", "date", "formula", "error_text"])
def test_text_stays_text_even_without_formula_escaping(key):
    value = TRICKY[key][0]
    options = ExportOptions(escape_formulas=False)
    sheet = workbook(xlsx(cols("q"), [sub({"q": value})], options)).active

    assert typed(sheet, 2)[6] == ("s", value)


def test_received_at_is_the_utc_wall_time_and_says_so():
    paris = ZoneInfo("Europe/Paris")
    moments = [
        WHEN.astimezone(paris),
        datetime(2026, 7, 1, 23, 59, 59, 250000, tzinfo=paris),
        datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC),
    ]
    submissions = [sub({}, pk=i, submitted_at=m) for i, m in enumerate(moments)]
    sheet = workbook(xlsx([], submissions)).active

    cells = [sheet.cell(row=i + 2, column=2) for i in range(len(moments))]

    assert sheet["B1"].value == "received_at"
    for cell, moment in zip(cells, moments, strict=True):
        assert cell.data_type == "d"
        assert cell.is_date
        assert cell.number_format == 'yyyy-mm-dd hh:mm:ss "UTC"'
        # openpyxl reads a date-time to the millisecond, as spreadsheets show it.
        expected = moment.astimezone(UTC).replace(tzinfo=None)
        assert abs(cell.value - expected) < timedelta(milliseconds=1)
    assert cells[0].value == datetime(2026, 11, 28, 9, 30, 5)
    assert cells[1].value == datetime(2026, 7, 1, 21, 59, 59, 250000)


def test_text_agrees_with_the_csv_cell_for_cell():
    answers = {key: value for key, (value, _) in TRICKY.items()}
    columns = cols(*answers)
    submissions = [sub(answers, user_id="@x", conversation_id=" =1")]

    sheet = workbook(xlsx(columns, submissions)).active
    text = csv_of(columns, submissions)

    assert values(sheet)[0] == text[0]
    for cell, csv_cell in zip(sheet[2], text[1], strict=True):
        if cell.data_type == "s":
            assert cell.value == csv_cell
        elif cell.data_type == "n" and cell.value is not None:
            assert float(csv_cell) == cell.value
        elif cell.value is None:
            assert csv_cell == ""


def test_masked_answers_are_masked_text():
    answers = {"email": "ada@example.com", "phone": "+44 20 7946 0123", "n": 5}
    options = ExportOptions(masked_keys=frozenset({"email", "phone"}))

    sheet = workbook(xlsx(cols(*answers), [sub(answers)], options)).active

    assert typed(sheet, 2)[6:] == [
        ("s", "a***@example.com"),
        ("s", "'+44 *** *** 123"),  # escaped, as in the CSV
        ("n", 5),
    ]


def test_long_text_is_cut_at_excels_limit_and_control_characters_break_nothing():
    answers = {"long": "x" * 40_000, "control": "bell\x07 and\ttab"}

    sheet = workbook(xlsx(cols(*answers), [sub(answers)])).active

    marker = " [… cut to fit an Excel cell: 40,000 characters in all]"
    assert sheet["G2"].value == "x" * (32_767 - len(marker)) + marker
    assert sheet["H2"].value == "bell\ufffd and\ttab"


# --- the sheet -----------------------------------------------------------------


def test_bold_frozen_header_with_an_autofilter():
    submissions = [sub({"q": i}, pk=i) for i in range(3)]

    sheet = workbook(xlsx(cols("q"), submissions)).active

    assert sheet.title == "Submissions"
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:G4"
    assert all(cell.font.b for cell in sheet[1])
    assert not any(cell.font.b for cell in sheet[2])


def test_headings_are_unique_as_in_the_csv():
    columns = [
        ExportColumn(key="submission_id", label="submission_id"),
        ExportColumn(key="bot", label="Bot"),
        ExportColumn(key="=x", label="Same"),
        ExportColumn(key="y", label="Same"),
    ]
    for options in (ExportOptions(), ExportOptions(labels=True)):
        sheet = workbook(xlsx(columns, [], options)).active
        header = values(sheet)[0]

        assert header == csv_of(columns, [], options)[0]
        assert len(set(header)) == len(header)
        assert header[: len(FIXED_COLUMNS)] == list(FIXED_COLUMNS)
    assert header[len(FIXED_COLUMNS) :] == [
        "submission_id (question)",
        "Bot",
        "Same (=x)",
        "Same (y)",
    ]


def test_column_widths_fit_the_header_and_the_first_rows_capped():
    answers = {"short": "ab", "long": "a long answer " * 20, "wide": "東京都"}
    sample = [sub(answers, pk=i) for i in range(XLSX_WIDTH_SAMPLE)]
    late = sub({"short": "far longer, but after the sample" * 10}, pk=999)

    sheet = workbook(xlsx(cols(*answers), [*sample, late])).active

    def width(key: str) -> float:
        column = len(FIXED_COLUMNS) + list(answers).index(key) + 1
        return sheet.column_dimensions[get_column_letter(column)].width

    assert sheet.column_dimensions["A"].width >= len("submission_id")
    assert sheet.column_dimensions["B"].width >= len("2026-11-28 09:30:05 UTC")
    assert width("short") < 12  # "short" and "ab": the late row is not sampled
    assert width("long") == pytest.approx(XLSX_MAX_WIDTH, abs=1)
    assert width("wide") >= 6  # three double-width characters


def test_an_empty_export_is_the_header_alone():
    sheet = workbook(xlsx(cols("a"), [])).active

    assert values(sheet) == [[*FIXED_COLUMNS, "a"]]
    assert sheet.freeze_panes == "A2"


def test_rows_beyond_a_sheets_limit_go_on_in_the_next_sheet():
    submissions = [sub({"n": i}, pk=i) for i in range(7)]

    book = workbook(xlsx(cols("n"), submissions, max_rows=4))

    assert book.sheetnames == ["Submissions", "Submissions 2", "Submissions 3"]
    pages = [values(sheet) for sheet in book.worksheets]
    assert [[row[0] for row in page[1:]] for page in pages] == [
        [0, 1, 2],
        [3, 4, 5],
        [6],
    ]
    assert all(page[0] == [*FIXED_COLUMNS, "n"] for page in pages)
    assert all(sheet.freeze_panes == "A2" for sheet in book.worksheets)


def test_more_columns_than_a_sheet_holds_is_an_error_before_writing():
    columns = [ExportColumn(key=f"q{i}") for i in range(XLSX_MAX_COLUMNS)]
    out = io.BytesIO()

    with pytest.raises(ValueError, match="an XLSX sheet holds at most 16,384"):
        xlsx_write(export_rows(columns=columns, submissions=[]), out)
    assert out.getvalue() == b""


def test_rows_are_read_as_they_are_written():
    taken = 0

    def submissions():
        nonlocal taken
        for i in range(1000):
            taken += 1
            yield sub({"n": i}, pk=i)

    rows = export_rows(columns=cols("n"), submissions=submissions())
    xlsx_write(rows, io.BytesIO())

    assert taken == 1000


# --- from the database -----------------------------------------------------------


@pytest.mark.django_db
def test_stored_answers_keep_their_types(bot):
    answers = {key: value for key, (value, _) in TRICKY.items()}
    answers.pop("infinity")  # JSON has no infinity
    answers.pop("beyond_doubles")
    stored = submission_with_answers(answers, event__bot=bot, event__received_at=WHEN)

    response = submission_xlsx_response(
        submissions=FormSubmission.objects.all(),
        options=ExportOptions(),
        handler_name="save-form",
    )

    sheet = workbook(downloaded(response)).active
    assert response["Content-Disposition"].startswith(
        'attachment; filename="submissions-save-form-'
    )
    assert response["Content-Disposition"].endswith('.xlsx"')
    assert values(sheet)[0][6:] == list(answers)
    assert typed(sheet, 2)[:2] == [("n", stored.pk), ("d", WHEN.replace(tzinfo=None))]
    assert dict(zip(answers, typed(sheet, 2)[6:], strict=True)) == {
        key: TRICKY[key][1] for key in answers
    }


@pytest.mark.django_db
def test_sensitive_answers_are_masked_unless_allowed(bot):
    submission_with_answers({"email": "ada@example.com", "name": "Ada"}, event__bot=bot)

    def export(mask: bool) -> list[Any]:
        response = submission_xlsx_response(
            submissions=FormSubmission.objects.all(),
            options=ExportOptions(),
            mask_sensitive=mask,
        )
        return values(workbook(downloaded(response)).active)[1][6:]

    assert export(True) == ["a***@example.com", "Ada"]
    assert export(False) == ["ada@example.com", "Ada"]


@pytest.mark.django_db
def test_many_rows_from_the_database_oldest_first(bot):
    bulk_submissions(2500, bot=bot, answers=lambda i: {"n": i, "t": f"row {i}"})

    response = submission_xlsx_response(
        submissions=FormSubmission.objects.all(), options=ExportOptions()
    )

    rows = values(workbook(downloaded(response)).active)
    assert len(rows) == 2501
    assert [row[6] for row in rows[1:]] == list(range(2500))
    assert rows[-1][7] == "row 2499"
