import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from submissions.exports import BOM
from tests.factories import BotFactory, bulk_submissions, submission_with_answers
from tests.spreadsheets import typed, values, workbook

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 5, 10, 9, 0, tzinfo=UTC)


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def export(*args: str, stderr: io.StringIO | None = None) -> str:
    out = io.StringIO()
    call_command(
        "export_submissions", *args, stdout=out, stderr=stderr or io.StringIO()
    )
    return out.getvalue()


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix(BOM), newline="")))


@pytest.fixture
def data(bot):
    other = BotFactory(slug="other")
    return {
        "early": submission_with_answers(
            {"name": "Ada", "email": "ada@example.com"},
            event__bot=bot,
            event__received_at=T0,
        ),
        "late": submission_with_answers(
            {"name": "Bob", "phone": "+44 20"},
            event__bot=bot,
            event__received_at=T0 + timedelta(days=2),
        ),
        "division": submission_with_answers(
            {"dividend": 10, "divisor": -4},
            event__bot=bot,
            event__handler_name="division-handler",
            event__received_at=T0 + timedelta(days=1),
        ),
        "other": submission_with_answers(
            {"name": "Cy"}, event__bot=other, event__received_at=T0
        ),
    }


def ids(text: str) -> list[str]:
    return [row[0] for row in parse(text)[1:]]


def test_everything_to_stdout_oldest_first(data):
    text = export()

    rows = parse(text)
    assert rows[0][:6] == [
        "submission_id",
        "received_at",
        "bot",
        "handler",
        "conversation_id",
        "user_id",
    ]
    assert rows[0][6:] == ["name", "email", "dividend", "divisor", "phone"]
    assert ids(text) == [
        str(s.pk) for s in sorted(data.values(), key=lambda s: (s.submitted_at, s.pk))
    ]
    assert text.endswith("\r\n")
    assert not text.startswith(BOM)


def test_filter_by_bot_and_handler(data):
    assert ids(export("--bot", "other")) == [str(data["other"].pk)]
    assert ids(export("--bot", "demo", "--handler", "division-handler")) == [
        str(data["division"].pk)
    ]
    header = parse(export("--handler", "division-handler"))[0]
    assert header[6:] == ["dividend", "divisor"]


def test_since_and_until_take_whole_days(data):
    assert ids(export("--bot", "demo", "--since", "2025-05-11")) == [
        str(data["division"].pk),
        str(data["late"].pk),
    ]
    assert ids(export("--bot", "demo", "--until", "2025-05-11")) == [
        str(data["early"].pk),
        str(data["division"].pk),
    ]
    assert ids(
        export("--bot", "demo", "--since", "2025-05-11", "--until", "2025-05-11")
    ) == [str(data["division"].pk)]


def test_since_and_until_take_date_times(data):
    assert ids(
        export(
            "--bot",
            "demo",
            "--since",
            "2025-05-10T09:00:00+00:00",
            "--until",
            "2025-05-10T09:00:01Z",
        )
    ) == [str(data["early"].pk)]


def test_labels_head_the_question_columns(data):
    header = parse(export("--labels", "--handler", "division-handler"))[0]

    assert header[6:] == ["Dividend", "Divisor"]


def test_excel_starts_with_a_bom(data):
    text = export("--excel", "--bot", "other")

    assert text.startswith(BOM + "submission_id,")
    assert parse(text)[1][6:] == ["Cy"]


def test_formulas_escaped_and_numbers_kept(data):
    rows = parse(export("--bot", "demo"))

    by_id = {row[0]: row for row in rows[1:]}
    header = rows[0]
    late = by_id[str(data["late"].pk)]
    division = by_id[str(data["division"].pk)]
    assert late[header.index("phone")] == "'+44 20"
    assert division[header.index("divisor")] == "-4"


def test_output_file_reports_what_it_wrote(data, tmp_path):
    target = tmp_path / "out.csv"

    message = export("--bot", "demo", "--output", str(target), "--excel")

    content = target.read_bytes()
    assert content.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in content
    assert len(parse(content.decode("utf-8"))) == 4
    assert message == f"Exported 3 submissions with 5 question columns to {target}.\n"


def test_progress_bar_on_a_terminal_only(bot, tmp_path):
    bulk_submissions(30, bot=bot, answers=lambda i: {"n": i})
    target = tmp_path / "out.csv"

    quiet = io.StringIO()
    export("--output", str(target), stderr=quiet)
    tty = TTY()
    export("--output", str(target), stderr=tty)

    assert quiet.getvalue() == ""
    assert "Exporting" in tty.getvalue()
    assert "30/30" in tty.getvalue()
    assert len(parse(target.read_text(encoding="utf-8"))) == 31


def test_empty_export_is_just_the_header(bot):
    text = export()

    assert parse(text) == [
        ["submission_id", "received_at", "bot", "handler", "conversation_id", "user_id"]
    ]


def test_a_handler_no_longer_registered_but_with_submissions_is_accepted(bot):
    old = submission_with_answers(
        {"a": 1}, event__bot=bot, event__handler_name="retired"
    )

    assert ids(export("--handler", "retired")) == [str(old.pk)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--bot", "dmeo"],
            "No bot with slug 'dmeo'. Did you mean 'demo'? Known bots: demo, other.",
        ),
        (
            ["--handler", "divison-handler"],
            "No handler named 'divison-handler' is registered or has submissions. "
            "Did you mean 'division-handler'?",
        ),
        (["--since", "yesterday"], "--since takes a date like 2025-01-31"),
        (["--until", "2025-13-01"], "--until takes a date like 2025-01-31"),
        (
            ["--since", "2025-05-12", "--until", "2025-05-11"],
            "--since (2025-05-12) must be before --until (2025-05-11).",
        ),
    ],
)
def test_clear_errors(data, args, message):
    with pytest.raises(CommandError) as excinfo:
        export(*args)

    assert message in str(excinfo.value)


# --- XLSX ------------------------------------------------------------------------


def test_xlsx_to_a_file_with_typed_cells(data, tmp_path):
    target = tmp_path / "out.xlsx"

    message = export("--format", "xlsx", "--bot", "demo", "--output", str(target))

    sheet = workbook(target).active
    rows = values(sheet)
    assert message == f"Exported 3 submissions with 5 question columns to {target}.\n"
    assert rows[0] == parse(export("--bot", "demo"))[0]
    assert [row[0] for row in rows[1:]] == [
        data["early"].pk,
        data["division"].pk,
        data["late"].pk,
    ]
    header = rows[0]
    division = typed(sheet, 3)
    assert division[header.index("received_at")] == (
        "d",
        (T0 + timedelta(days=1)).replace(tzinfo=None),
    )
    assert division[header.index("divisor")] == ("n", -4)
    assert typed(sheet, 4)[header.index("phone")] == ("s", "'+44 20")
    assert sheet.freeze_panes == "A2"


def test_xlsx_labels_and_filters_as_for_csv(data, tmp_path):
    target = tmp_path / "out.xlsx"
    args = ["--handler", "save-form", "--since", "2025-05-11", "--labels"]

    export("--format", "xlsx", *args, "--output", str(target))

    rows = values(workbook(target).active)
    assert rows[0] == parse(export(*args))[0]
    assert "Name" in rows[0]
    assert [row[0] for row in rows[1:]] == [data["late"].pk]


def test_xlsx_progress_bar_on_a_terminal(bot, tmp_path):
    bulk_submissions(30, bot=bot, answers=lambda i: {"n": i})
    target = tmp_path / "out.xlsx"
    tty = TTY()

    export("--format", "xlsx", "--output", str(target), stderr=tty)

    assert "30/30" in tty.getvalue()
    assert [row[6] for row in values(workbook(target).active)[1:]] == list(range(30))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--format", "xlsx"],
            "XLSX is a binary file, not text for a terminal: give --output FILE",
        ),
        (
            ["--format", "xlsx", "--excel", "--output", "x.xlsx"],
            "--excel is for CSV (a byte order mark); an XLSX file needs none.",
        ),
        (["--format", "ods"], "invalid choice: 'ods'"),
    ],
)
def test_xlsx_errors(data, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    with pytest.raises(CommandError) as excinfo:
        export(*args)

    assert message in str(excinfo.value)
    assert not (tmp_path / "x.xlsx").exists()
