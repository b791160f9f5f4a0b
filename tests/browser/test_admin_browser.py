"""The daily path in a real browser: log in, find an event, open a submission, export.

Drives Debian's Chromium (``/usr/bin/chromium``, installed by
``scripts/install-browser.sh``) through Playwright; never a downloaded
browser. Screenshots of each page go to ``artefacts/browser/`` (git-ignored).
"""

import csv
import io
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connections
from playwright.sync_api import Browser, Page, expect, sync_playwright

from submissions.exports import BOM
from submissions.models import FormSubmission
from submissions.tokens import sign_token
from tests.factories import BotFactory, WebhookEventFactory

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct-horse-battery-staple"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=(
        f"Debian's Chromium is not installed at {CHROMIUM}: run "
        "scripts/install-browser.sh as root (apt-get install chromium) to run the "
        "browser test."
    ),
)


@pytest.fixture
def artefacts() -> Path:
    path = Path(settings.BASE_DIR) / "artefacts" / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser(monkeypatch) -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # test makes meanwhile are still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
        # While Playwright's loop runs, the ORM keeps its connections apart from
        # the ones pytest-django tears down: close them here, or PostgreSQL
        # refuses to drop the test database ("being accessed by other users").
        connections.close_all()


@pytest.fixture
def page(browser: Browser, settings) -> Iterator[Page]:
    # The live server speaks plain HTTP: cookies must not require HTTPS.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    context = browser.new_context(
        accept_downloads=True, viewport={"width": 1400, "height": 900}
    )
    page = context.new_page()
    yield page
    context.close()


def send(live_server, *fields: str, conversation: str) -> None:
    call_command(
        "send_webhook",
        "demo",
        "save-form",
        *(arg for field in fields for arg in ("-f", field)),
        "--conversation",
        conversation,
        "--url",
        f"{live_server.url}/webhooks/demo/",
        stdout=io.StringIO(),
    )


def parse(path: Path) -> list[list[str]]:
    text = path.read_text(encoding="utf-8")
    return list(csv.reader(io.StringIO(text.removeprefix(BOM), newline="")))


def test_log_in_filter_open_and_export(live_server, page: Page, artefacts: Path):
    bot = BotFactory(slug="demo", name="Demo bot")
    User.objects.create_superuser("admin", password=PASSWORD)
    # Two real deliveries through the endpoint, as `send_webhook` after `make run`.
    send(live_server, "name=Zoë Ångström", "city=Zürich, CH", conversation="conv-zoe")
    send(
        live_server,
        "name=Bob",
        'comment=Line one\nline two, "quoted"',
        "total=-5",
        "formula==1+2",
        conversation="conv-bob",
    )
    WebhookEventFactory(
        bot=bot,
        status="failed",
        handler_name="division-handler",
        conversation_id="conv-failed",
        error_code="handler_error",
    )
    zoe = FormSubmission.objects.get(conversation_id="conv-zoe")

    # Log in.
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.screenshot(path=artefacts / "01-login.png", full_page=True)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("admin")
    page.screenshot(path=artefacts / "02-admin-index.png", full_page=True)

    # Webhook events, filtered by status.
    page.get_by_role("link", name="Webhook events").first.click()
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
    page.locator("#changelist-filter").get_by_role("link", name="Failed").click()
    expect(page).to_have_url(re.compile(r"[?&]status__exact=failed"))
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("conv-failed")
    page.screenshot(path=artefacts / "03-events-failed.png", full_page=True)

    # Find the conversation and open its submission.
    page.goto(f"{live_server.url}/admin/submissions/formsubmission/")
    page.fill("#searchbar", "conv-zoe")
    page.press("#searchbar", "Enter")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    page.screenshot(path=artefacts / "04-submissions-search.png", full_page=True)
    rows.first.locator("th a").click()
    answers = page.locator("table.answers")
    expect(answers).to_contain_text("Zoë Ångström")
    expect(answers).to_contain_text("Zürich, CH")
    page.screenshot(path=artefacts / "05-submission-detail.png", full_page=True)
    page.get_by_role("link", name=f"Event #{zoe.event_id}").click()
    expect(page.locator("pre.json-block").first).to_contain_text(
        '"conversationId": "conv-zoe"'
    )
    page.screenshot(path=artefacts / "06-event-detail.png", full_page=True)

    # Export everything matching the list (for Excel), then the selected rows.
    page.goto(f"{live_server.url}/admin/submissions/formsubmission/")
    page.screenshot(path=artefacts / "07-submissions.png", full_page=True)
    with page.expect_download() as info:
        page.click("#export-all-excel")
    everything = artefacts / "export-all.csv"
    info.value.save_as(everything)
    assert everything.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = parse(everything)
    header = rows[0]
    assert header[:6] == [
        "submission_id",
        "received_at",
        "bot",
        "handler",
        "conversation_id",
        "user_id",
    ]
    assert header[6:] == ["name", "city", "comment", "total", "formula"]
    by_conversation = {row[4]: dict(zip(header, row, strict=True)) for row in rows[1:]}
    assert by_conversation["conv-zoe"]["name"] == "Zoë Ångström"
    assert by_conversation["conv-zoe"]["city"] == "Zürich, CH"
    assert by_conversation["conv-zoe"]["comment"] == ""
    assert by_conversation["conv-bob"]["comment"] == 'Line one\nline two, "quoted"'
    assert by_conversation["conv-bob"]["total"] == "-5"
    assert by_conversation["conv-bob"]["formula"] == "'=1+2"

    page.locator("#result_list tbody tr", has_text="conv-bob").locator(
        "input.action-select"
    ).check()
    page.select_option("select[name=action]", "export_as_csv")
    page.screenshot(path=artefacts / "08-export-selected.png", full_page=True)
    with page.expect_download() as info:
        page.click("button[name=index]")
    selected = artefacts / "export-selected.csv"
    info.value.save_as(selected)
    rows = parse(selected)
    assert [row[4] for row in rows[1:]] == ["conv-bob"]
    assert rows[0][6:] == ["name", "comment", "total", "formula"]
    assert not selected.read_bytes().startswith(b"\xef\xbb\xbf")
    assert os.listdir(artefacts)  # screenshots kept for people to look at


def test_the_api_docs_page_lists_and_runs_the_endpoints(
    live_server, page: Page, artefacts: Path
):
    bot = BotFactory(slug="demo", name="Demo bot")
    User.objects.create_superuser("admin", password=PASSWORD)
    send(live_server, "name=Ada", conversation="conv-docs")

    # A staff session is enough for the docs page to call the API.
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("admin")

    page.goto(f"{live_server.url}/api/docs/")
    paths = page.locator(".opblock-summary-path")
    expect(paths.filter(has_text="/webhooks/{bot_slug}/")).to_have_count(1)
    expect(paths.filter(has_text=re.compile(r"^/api/submissions/$"))).to_have_count(1)
    expect(paths.filter(has_text=re.compile(r"^/api/events/$"))).to_have_count(1)
    page.screenshot(path=artefacts / "10-api-docs.png", full_page=True)

    operation = page.locator("#operations-submissions-api_submissions_list")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    live = operation.locator(".live-responses-table .response")
    expect(live.locator(".response-col_status")).to_contain_text("200")
    expect(live.locator(".response-col_description")).to_contain_text("conv-docs")
    expect(live.locator(".response-col_description")).to_contain_text(bot.slug)
    page.screenshot(path=artefacts / "11-api-docs-try.png", full_page=True)


def test_the_console_overview_forms_table_and_bot_diagnosis(
    live_server, page: Page, artefacts: Path
):
    bot = BotFactory(slug="demo", name="Demo bot")
    User.objects.create_superuser("admin", password=PASSWORD)
    send(live_server, "name=Zoë", "email=zoe@example.com", conversation="conv-zoe")
    send(live_server, "name=Bob", "email=bob@example.com", conversation="conv-bob")
    # A delivery signed with the secret before a rotation: refused, stored.
    body = json.dumps({"handler": "save-form", "formValues": {"name": "Eve"}}).encode()
    token = sign_token("the-secret-before-the-rotation-" + "x" * 20, body=body)
    refused = urllib.request.Request(  # noqa: S310 - the live server, http
        f"{live_server.url}/webhooks/demo/",
        data=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(refused, timeout=30)  # noqa: S310
    assert answer.value.code == 401

    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")

    # The overview, first on the home page: charts with their numbers.
    page.locator("#console-links").get_by_role("link", name="Overview").click()
    expect(page.locator("#form-chart svg rect")).to_have_count(1)
    expect(page.locator("#status-chart")).to_be_visible()
    expect(page.locator("#attention-rejected")).to_contain_text("Demo bot")
    page.screenshot(path=artefacts / "20-overview.png", full_page=True)

    # The forms list, then one form as a table: a column per question.
    page.goto(f"{live_server.url}/admin/")
    page.locator("#console-links").get_by_role("link", name="Forms").click()
    expect(page.locator("#forms tbody tr")).to_have_count(1)
    expect(page.locator("#forms")).to_contain_text("2")
    page.screenshot(path=artefacts / "21-forms.png", full_page=True)
    page.locator("#forms tbody tr a").first.click()
    headings = page.locator("#form-table thead th")
    expect(headings).to_have_text(["Received", "name", "email"])  # keys: no labels sent
    expect(page.locator("#form-table tbody tr").first).to_contain_text(
        "bob@example.com"
    )
    page.screenshot(path=artefacts / "22-form-table.png", full_page=True)
    with page.expect_download() as info:
        page.click("#form-export-csv")
    table_csv = artefacts / "form-table.csv"
    info.value.save_as(table_csv)
    rows = parse(table_csv)
    assert rows[0][6:] == ["name", "email"]
    assert {row[6] for row in rows[1:]} == {"Zoë", "Bob"}
    # The same view as XLSX, read back cell by cell.
    with page.expect_download() as info:
        page.click("#form-export-xlsx")
    table_xlsx = artefacts / "form-table.xlsx"
    info.value.save_as(table_xlsx)
    sheet = openpyxl.load_workbook(table_xlsx).active
    header = [cell.value for cell in sheet[1]]
    assert header[6:] == ["name", "email"]
    assert sheet.freeze_panes == "A2"
    values = {row[6].value: row for row in sheet.iter_rows(min_row=2)}
    assert set(values) == {"Zoë", "Bob"}
    assert values["Zoë"][7].value == "zoe@example.com"
    assert values["Zoë"][7].data_type == "s"

    # The bot page diagnoses the refused delivery.
    page.goto(f"{live_server.url}/admin/submissions/bot/{bot.pk}/change/")
    refused = page.locator("#bot-recent-deliveries tr.delivery-rejected")
    expect(refused).to_have_count(1)
    refused.locator("summary").click()
    diagnosis = refused.locator("details.diagnosis")
    expect(diagnosis).to_contain_text("does not match this bot's JWT secret")
    expect(diagnosis).to_contain_text('"alg": "HS256"')
    expect(diagnosis).to_contain_text("handler name: found as handler")
    page.screenshot(path=artefacts / "23-bot-diagnosis.png", full_page=True)
