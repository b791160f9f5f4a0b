"""The read API's ``?format=xlsx``: the export command's workbook, typed cells."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.conftest import token_client
from tests.factories import BotFactory, bulk_submissions, submission_with_answers
from tests.spreadsheets import XLSX, downloaded, typed, values, workbook

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 5, 10, 9, 0, tzinfo=UTC)
URL = "/api/submissions/?format=xlsx"


@pytest.fixture
def data(bot):
    other = BotFactory(slug="other")
    submission_with_answers(
        {"name": "=HYPERLINK()", "topics": ["billing", "api"], "n": -5},
        event__bot=bot,
        event__received_at=T0,
    )
    submission_with_answers(
        {"name": "Zoë", "zip": "01234", "agree": True},
        event__bot=bot,
        event__received_at=T0 + timedelta(days=2),
    )
    submission_with_answers(
        {"dividend": 10, "divisor": 4.5},
        event__bot=bot,
        event__handler_name="division-handler",
        event__received_at=T0 + timedelta(days=1),
    )
    submission_with_answers({"name": "Cy"}, event__bot=other, event__received_at=T0)


def api_rows(client, query: str = "", **headers: str) -> list[list]:
    response = client.get(URL + query, **headers)
    assert response.status_code == 200, response.content
    return values(workbook(downloaded(response)).active)


def command_rows(tmp_path, *args: str) -> list[list]:
    target = tmp_path / "command.xlsx"
    call_command(
        "export_submissions",
        "--format",
        "xlsx",
        "--output",
        str(target),
        *args,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    return values(workbook(target).active)


@pytest.mark.parametrize(
    ("query", "args"),
    [
        ("", []),
        ("&bot=demo", ["--bot", "demo"]),
        ("&handler=save-form", ["--handler", "save-form"]),
        (
            "&since=2025-05-11&until=2025-05-12",
            ["--since", "2025-05-11", "--until", "2025-05-12"],
        ),
        ("&labels=true", ["--labels"]),
    ],
)
def test_the_workbook_is_the_export_commands(
    client_for_exporter, data, tmp_path, query, args
):
    expected = command_rows(tmp_path, *args)

    assert api_rows(client_for_exporter, query) == expected
    assert len(expected) >= 2  # a header and at least one row


def test_cells_are_typed(client_for_exporter, data):
    response = client_for_exporter.get(URL + "&bot=demo")
    sheet = workbook(downloaded(response)).active
    header = values(sheet)[0]

    def cell(row: int, heading: str):
        return typed(sheet, row)[header.index(heading)]

    assert cell(2, "received_at") == ("d", datetime(2025, 5, 10, 9, 0))
    assert cell(2, "name") == ("s", "'=HYPERLINK()")
    assert cell(2, "topics") == ("s", "billing; api")
    assert cell(2, "n") == ("n", -5)
    assert cell(3, "divisor") == ("n", 4.5)
    assert cell(4, "zip") == ("s", "01234")
    assert cell(4, "agree") == ("b", True)


def test_the_accept_header_selects_xlsx_too(client_for_exporter, data):
    response = client_for_exporter.get("/api/submissions/", HTTP_ACCEPT=XLSX)

    assert len(values(workbook(downloaded(response)).active)) == 5


def test_the_workbook_is_not_paginated_and_is_named(client_for_exporter, bot):
    bulk_submissions(30, bot=bot, answers=lambda i: {"n": i})

    response = client_for_exporter.get(URL + "&page_size=5&handler=save-form")

    assert len(values(workbook(downloaded(response)).active)) == 31
    assert response["Content-Disposition"].startswith(
        'attachment; filename="submissions-save-form-'
    )
    assert response["Content-Disposition"].endswith('.xlsx"')


def test_reading_without_the_export_permission_is_403_json(client_for_reader, data):
    response = client_for_reader.get(URL)
    by_accept = client_for_reader.get("/api/submissions/", HTTP_ACCEPT=XLSX)

    for refused in (response, by_accept):
        assert refused.status_code == 403
        assert refused["Content-Type"] == "application/json"
        assert "XLSX" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("&excel=true", "excel"), ("&labels=maybe", "labels"), ("&bot=nope", "bot")],
)
def test_bad_options_are_400_json(client_for_exporter, data, query, parameter):
    response = client_for_exporter.get(URL + query)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert parameter in response.json()["errors"]


def test_sensitive_answers_are_masked_without_the_permission(make_user, bot):
    submission_with_answers({"email": "ada@example.com", "name": "Ada"}, event__bot=bot)
    perms = (
        "submissions.view_formsubmission",
        "submissions.export_formsubmission",
    )
    masked = token_client(make_user("masked", *perms))
    trusted = token_client(
        make_user("trusted", *perms, "submissions.view_sensitive_answers")
    )

    assert api_rows(masked)[1][6:] == ["a***@example.com", "Ada"]
    assert api_rows(trusted)[1][6:] == ["ada@example.com", "Ada"]


def test_queries_do_not_grow_with_rows(client_for_exporter, bot):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            api_rows(client_for_exporter, "&bot=demo")
        return len(queries)

    bulk_submissions(2, bot=bot, answers=lambda i: {"a": i})
    few = count()
    bulk_submissions(60, bot=bot, answers=lambda i: {f"q{k}": k for k in range(i % 7)})
    many = count()

    assert many == few
    assert many <= 7  # token, permissions, bot, columns, rows, answers
