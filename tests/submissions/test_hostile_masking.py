"""Hostile input, masking has no side door.

A staff user who may view everything but not ``view_sensitive_answers``
asks for every page, list, search, filter, ordering, download and API
format that could show a sensitive answer, or show that a row holds one;
the secret must appear in no response (XLSX files unzipped, the API's
base64 bodies decoded), and a search for it must not find its row.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from handlers import WebhookHandler, register
from submissions.models import FormSubmission, HandlerRun, WebhookEvent
from submissions.tokens import sign_token

pytestmark = pytest.mark.django_db

SECRET = "hushmk7"
EMAIL = f"{SECRET}@example.com"
MOBILE = f"{SECRET}mobile"
VIEWS = (
    "view_bot",
    "view_formsubmission",
    "view_formanswer",
    "view_webhookevent",
    "view_handlerrun",
    "export_formsubmission",
)


def form(handler: str, **extra: Any) -> dict[str, Any]:
    return {
        "handler": handler,
        "userId": "user-1",
        "conversationId": "conv-1",
        "formValues": [
            {"key": "name", "label": "Name", "value": "Visible Name"},
            {"key": "contact", "label": "Email", "type": "EMAIL", "value": EMAIL},
            {"key": "Mobile", "label": "Mobile", "value": MOBILE},
        ],
        **extra,
    }


@pytest.fixture
def seeded(deliver, bot, handler_registry) -> dict[str, Any]:
    @register
    class Contact(WebhookHandler):
        """Echoes the answers back in its reply, as a handler may."""

        name = "contact-form"

        def handle(self, request, response):
            values = request.form_values
            response.add_text(f"We will write to {values['contact']}")
            response.set_variable("mobile", values["Mobile"])

    @register
    class Broken(WebhookHandler):
        name = "broken-form"

        def handle(self, request, response):
            raise ValueError(f"Cannot deliver to {request.form_values['contact']!r}")

    assert deliver(form("contact-form", id="d-1")).status_code == 200
    assert deliver(form("contact-form", id="d-1")).status_code == 200  # copy
    assert deliver(form("broken-form")).status_code == 500
    malformed = form("contact-form")
    malformed["formValues"].append("not an answer")
    assert deliver(malformed).status_code == 400
    body = json.dumps(form("contact-form")).encode()
    wrong = sign_token("a-wrong-secret-" + "x" * 32, body=body)
    assert deliver(body=body, token=wrong).status_code == 401
    return {
        "submission": FormSubmission.objects.filter(handler_name="contact-form").get(),
        "events": list(WebhookEvent.objects.all()),
        "runs": list(HandlerRun.objects.all()),
        "bot": bot,
    }


def user_with(*codenames: str) -> User:
    user = User.objects.create_user(f"u{len(codenames)}", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def viewer() -> Client:
    client = Client()
    client.force_login(user_with(*VIEWS))
    return client


@pytest.fixture
def trusted() -> Client:
    client = Client()
    client.force_login(user_with(*VIEWS, "view_sensitive_answers"))
    return client


@pytest.fixture
def api_viewer() -> APIClient:
    client = APIClient()
    token = Token.objects.create(user=user_with(*VIEWS))
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def response_bytes(response) -> bytes:
    """Everything a response says: XLSX unzipped, base64 bodies in JSON decoded."""
    raw = (
        b"".join(response.streaming_content)
        if response.streaming
        else bytes(response.content)
    )
    if raw[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(raw)) as book:
            return b"".join(book.read(name) for name in book.namelist())
    if response.get("Content-Type", "").startswith("application/json"):
        decoded = [raw]

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    if key == "raw_body" and isinstance(item, str):
                        decoded.append(base64.b64decode(item))
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(json.loads(raw))
        return b"\n".join(decoded)
    return raw


def assert_no_secret(response, *, asked: str = "") -> bytes:
    """No secret in ``response``, but for the search term ``asked`` echoed back."""
    assert response.status_code < 500, response.status_code
    text = response_bytes(response).lower()
    if asked:
        for echo in {asked, quote(asked), quote_plus(asked), escape(asked)}:
            text = text.replace(echo.lower().encode(), b"")
    assert SECRET.encode() not in text
    return text


def admin_urls(seeded) -> list[tuple[str, dict[str, str]]]:
    submission = seeded["submission"]
    bot = seeded["bot"]
    changelists = {
        name: reverse(f"admin:submissions_{name}_changelist")
        for name in ("formsubmission", "webhookevent", "handlerrun")
    }
    table = reverse("admin:form-table", args=[bot.pk, "contact-form"])
    urls: list[tuple[str, dict[str, str]]] = [
        (reverse("admin:submissions_formsubmission_change", args=[submission.pk]), {}),
        (reverse("admin:submissions_bot_change", args=[bot.pk]), {}),
        (reverse("admin:overview"), {}),
        (reverse("admin:forms"), {}),
        (table, {}),
        (table, {"since": "2000-01-01", "until": "2100-01-01"}),
        (reverse("admin:submissions_formsubmission_export"), {}),
        (reverse("admin:submissions_formsubmission_export_excel"), {}),
        (reverse("admin:submissions_formsubmission_export_xlsx"), {}),
        (reverse("admin:submissions_formsubmission_export"), {"q": "Visible"}),
    ]
    urls += [
        (reverse("admin:submissions_webhookevent_change", args=[e.pk]), {})
        for e in seeded["events"]
    ]
    urls += [
        (reverse("admin:submissions_handlerrun_change", args=[r.pk]), {})
        for r in seeded["runs"]
    ]
    for url in changelists.values():
        urls += [(url, {}), (url, {"o": "-1"}), (url, {"o": "2.3"})]
        urls += [(url, {"q": "Visible"}), (url, {"handler_name": "contact-form"})]
    urls += [
        (changelists["formsubmission"], {"bot__id__exact": str(bot.pk)}),
        (
            changelists["formsubmission"],
            {"submitted_at__gte": "2000-01-01 00:00:00+00:00"},
        ),
        (changelists["webhookevent"], {"status__exact": "failed"}),
        (changelists["handlerrun"], {"outcome__exact": "failed"}),
    ]
    return urls


def test_no_admin_page_list_or_download_shows_the_secret(seeded, viewer, trusted):
    leaks = []
    for url, params in admin_urls(seeded):
        response = viewer.get(url, params)
        assert response.status_code == 200, (url, params)
        if SECRET.encode() in response_bytes(response).lower():
            leaks.append((url, params))
    assert leaks == [], "\n".join(map(str, leaks))
    # The trusted user sees it on the submission's page: the marker is there.
    page = trusted.get(
        reverse(
            "admin:submissions_formsubmission_change", args=[seeded["submission"].pk]
        )
    )
    assert EMAIL in page.content.decode()


@pytest.mark.parametrize(
    "action", ["export_as_csv", "export_as_csv_excel", "export_as_xlsx"]
)
def test_the_export_actions_mask(seeded, viewer, action):
    url = reverse("admin:submissions_formsubmission_changelist")
    response = viewer.post(
        url, {"action": action, "_selected_action": [seeded["submission"].pk]}
    )
    assert response.status_code == 200
    assert_no_secret(response)


SEARCHES = [SECRET, EMAIL, MOBILE, SECRET.upper(), f"{SECRET}@", "mk7mob"]


@pytest.mark.parametrize("term", SEARCHES)
def test_searching_for_the_secret_finds_nothing(seeded, viewer, trusted, term):
    submission = seeded["submission"]
    link = reverse("admin:submissions_formsubmission_change", args=[submission.pk])
    pages = [
        (reverse("admin:submissions_formsubmission_changelist"), link),
        (reverse("admin:form-table", args=[seeded["bot"].pk, "contact-form"]), link),
    ]
    for url, row in pages:
        found = viewer.get(url, {"q": term})
        assert found.status_code == 200
        assert row not in found.content.decode(), (url, term)
    export = viewer.get(reverse("admin:submissions_formsubmission_export"), {"q": term})
    assert str(submission.pk) not in response_bytes(export).decode().splitlines()[1:]
    # Those who may see the answers find it.
    if term in (EMAIL, MOBILE):
        found = trusted.get(pages[0][0], {"q": term})
        assert link in found.content.decode()


CONTENT_LOOKUPS = [
    ("webhookevent", "payload__icontains"),
    ("webhookevent", "raw_body__contains"),
    ("webhookevent", "response_body__icontains"),
    ("webhookevent", "error_detail__icontains"),
    ("webhookevent", "traceback__icontains"),
    ("webhookevent", "headers__icontains"),
    ("webhookevent", "token_info__icontains"),
    ("handlerrun", "message__icontains"),
    ("handlerrun", "reply__icontains"),
    ("handlerrun", "traceback__icontains"),
    ("handlerrun", "event__payload__icontains"),
    ("formsubmission", "answers__value_text__icontains"),
    ("formsubmission", "answers__value__icontains"),
    ("formsubmission", "event__payload__icontains"),
]


@pytest.mark.parametrize(("model", "lookup"), CONTENT_LOOKUPS)
def test_no_list_filters_on_what_it_does_not_show(seeded, viewer, model, lookup):
    url = reverse(f"admin:submissions_{model}_changelist")
    hit = viewer.get(url, {lookup: SECRET})
    miss = viewer.get(url, {lookup: "no-such-text-anywhere"})

    assert hit.status_code == miss.status_code == 400  # refused, not answered
    assert_no_secret(hit, asked=SECRET)


API_REQUESTS = [
    ("/api/submissions/", {}),
    ("/api/submissions/", {"format": "json"}),
    ("/api/submissions/", {"format": "csv"}),
    ("/api/submissions/", {"format": "csv", "labels": "true", "excel": "true"}),
    ("/api/submissions/", {"format": "xlsx"}),
    ("/api/submissions/", {"format": "xlsx", "labels": "true"}),
    ("/api/submissions/", {"format": "api"}),
    ("/api/submissions/", {"handler": "contact-form", "user_id": "user-1"}),
    ("/api/submissions/", {"search": SECRET, "q": SECRET}),
    ("/api/events/", {}),
    ("/api/events/", {"format": "api"}),
    ("/api/events/", {"status": ["failed", "rejected", "duplicate", "processed"]}),
    ("/api/events/", {"payload__icontains": SECRET}),
]


def test_no_api_request_shows_the_secret(seeded, api_viewer):
    requests = [
        *API_REQUESTS,
        (f"/api/submissions/{seeded['submission'].pk}/", {}),
        *((f"/api/events/{e.pk}/", {}) for e in seeded["events"]),
        *((f"/api/events/{e.pk}/", {"format": "api"}) for e in seeded["events"]),
    ]
    leaks = []
    for url, params in requests:
        response = api_viewer.get(url, params)
        assert response.status_code in (200, 404), (url, params)
        if SECRET.encode() in response_bytes(response).lower():
            leaks.append((url, params))
    assert leaks == [], "\n".join(map(str, leaks))


def test_a_key_that_only_python_lowers_to_a_sensitive_one_is_not_searched(
    settings, deliver, bot, viewer
):
    """``K`` (the Kelvin sign) lowers to ``k`` in Python, not in SQLite's SQL."""
    settings.WEBHOOKS = {**settings.WEBHOOKS, "SENSITIVE_KEYS": ["bank"]}
    deliver(
        {
            "handler": "bank-form",
            "formValues": [{"key": "ban\u212a", "value": f"{SECRET}-account"}],
        }
    )
    submission = FormSubmission.objects.get()
    link = reverse("admin:submissions_formsubmission_change", args=[submission.pk])
    changelist = reverse("admin:submissions_formsubmission_changelist")

    listed = viewer.get(changelist)
    found = viewer.get(changelist, {"q": f"{SECRET}-account"})

    assert link in listed.content.decode()
    assert_no_secret(listed)  # masked, as Python decides
    assert link not in found.content.decode()  # and so not searched


def test_the_delete_confirmation_lists_answers_without_their_values(seeded):
    client = Client()
    client.force_login(user_with(*VIEWS, "delete_formsubmission", "delete_formanswer"))
    submission = seeded["submission"]
    single = client.get(
        reverse("admin:submissions_formsubmission_delete", args=[submission.pk])
    )
    bulk = client.post(
        reverse("admin:submissions_formsubmission_changelist"),
        {"action": "delete_selected", "_selected_action": [submission.pk]},
    )

    for page in (single, bulk):
        assert page.status_code == 200
        assert "Are you sure" in page.content.decode()
        assert_no_secret(page)
