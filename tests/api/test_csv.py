import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from submissions.exports import BOM
from tests.factories import BotFactory, bulk_submissions, submission_with_answers

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 5, 10, 9, 0, tzinfo=UTC)
URL = "/api/submissions/?format=csv"


@pytest.fixture
def data(bot):
    other = BotFactory(slug="other")
    submission_with_answers(
        {"name": "=HYPERLINK()", "topics": ["billing", "api"], "n": -5},
        event__bot=bot,
        event__received_at=T0,
    )
    submission_with_answers(
        {"name": "Zoë", "extra": {"a": 1}},
        event__bot=bot,
        event__received_at=T0 + timedelta(days=2),
    )
    submission_with_answers(
        {"dividend": 10, "divisor": 4},
        event__bot=bot,
        event__handler_name="division-handler",
        event__received_at=T0 + timedelta(days=1),
    )
    submission_with_answers({"name": "Cy"}, event__bot=other, event__received_at=T0)


def api_csv(client, query: str = "") -> str:
    response = client.get(URL + query)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return b"".join(response.streaming_content).decode("utf-8")


def command_csv(*args: str) -> str:
    out = io.StringIO()
    call_command("export_submissions", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


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
        ("&until=2025-05-11T09:00:00Z", ["--until", "2025-05-11T09:00:00Z"]),
        ("&labels=true", ["--labels"]),
        ("&excel=true", ["--excel"]),
        ("&bot=other&labels=1&excel=1", ["--bot", "other", "--labels", "--excel"]),
    ],
)
def test_the_csv_is_the_export_commands(client_for_exporter, data, query, args):
    expected = command_csv(*args)

    assert api_csv(client_for_exporter, query) == expected
    assert expected.count("\r\n") >= 2  # a header and at least one row


def test_the_excel_option_starts_with_a_bom(client_for_exporter, data):
    assert api_csv(client_for_exporter, "&excel=true").startswith(BOM)
    assert not api_csv(client_for_exporter).startswith(BOM)


def test_the_csv_is_not_paginated(client_for_exporter, bot):
    bulk_submissions(30, bot=bot, answers=lambda i: {"n": i})

    text = api_csv(client_for_exporter, "&page_size=5")

    assert text.count("\r\n") == 31


def test_the_file_is_named_after_the_handler(client_for_exporter, data):
    response = client_for_exporter.get(URL + "&handler=division-handler")

    assert response["Content-Disposition"].startswith(
        'attachment; filename="submissions-division-handler-'
    )


@pytest.mark.parametrize("query", ["&excel=maybe", "&since=never", "&bot=nope"])
def test_bad_options_are_400_json_not_csv(client_for_exporter, data, query):
    response = client_for_exporter.get(URL + query)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"].startswith("Invalid query parameters: ")


def test_queries_do_not_grow_with_rows(client_for_exporter, bot):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            api_csv(client_for_exporter, "&bot=demo")
        return len(queries)

    bulk_submissions(2, bot=bot, answers=lambda i: {"a": i})
    few = count()
    bulk_submissions(60, bot=bot, answers=lambda i: {f"q{k}": k for k in range(i % 7)})
    many = count()

    assert many == few
    assert many <= 7  # token, permissions, bot, columns, rows, answers
