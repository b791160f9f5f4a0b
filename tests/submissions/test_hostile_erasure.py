"""Hostile input, erasure is complete: nothing of the person survives anywhere.

One person's data is seeded everywhere it can reach through the real
endpoint, the handlers, the follow-up worker, replays and alerts (a marker in
the user id, the answers, a header, a refused token's claims, a handler's
reply, a handler's error, a follow-up's error); after the erasure, every
text, JSON and binary column of every table is scanned for the marker. Then
the races: a delivery or a replay for the same person while the erasure
runs, interleaved deterministically on every database and with real threads
on PostgreSQL.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.core.management import call_command
from django.db import connection, connections, models
from django.test import Client
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from alerts.models import AlertKind, SentAlert
from alerts.selectors import watches_clear
from handlers import WebhookHandler, register
from submissions.models import ErasureLog, HandlerRun, WebhookEvent
from submissions.replay import webhook_event_replay
from submissions.services.privacy import personal_data_erase
from submissions.tokens import sign_token
from tests.alerts.factories import AlertRecipientFactory, AlertRuleFactory

MARKER = "Qz7mark3r"
USER = f"user-{MARKER}"
EMAIL = f"{MARKER.lower()}@example.com"


def delivery(handler: str, **extra: Any) -> dict[str, Any]:
    return {
        "handler": handler,
        "userId": USER,
        "conversationId": f"conv-{MARKER}",
        "formValues": [
            {"key": "name", "value": f"Ada {MARKER}"},
            {"key": "email", "type": "email", "value": EMAIL},
        ],
        **extra,
    }


def text_columns() -> Iterator[tuple[type[models.Model], models.Field]]:
    """Every text, JSON and binary column of every table the project has."""
    kinds = (models.CharField, models.TextField, models.JSONField, models.BinaryField)
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, kinds):
                yield model, field


def as_text(value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def marker_found() -> list[str]:
    """Where the marker (any case) still is: ``table.column #pk``."""
    found = []
    for model, field in text_columns():
        rows = model._default_manager.values_list("pk", field.attname)
        for pk, value in rows.iterator():
            if value is not None and MARKER.lower() in as_text(value).lower():
                found.append(f"{model._meta.db_table}.{field.column} #{pk}")
    return found


def work_off_queue() -> None:
    call_command(
        "db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0
    )


@pytest.fixture
def handlers(handler_registry):
    @register
    class Echo(WebhookHandler):
        """Replies with the person's name; its follow-up fails naming their email."""

        name = "echo-form"
        follow_up_max_attempts = 1

        def handle(self, request, response):
            response.add_text(f"Thanks {request.form_values['name']}")
            response.set_variable("email", request.form_values["email"])

        def follow_up(self, request):
            raise RuntimeError(f"The CRM refused {request.form_values['email']}")

    @register
    class Failing(WebhookHandler):
        name = "failing-form"

        def handle(self, request, response):
            raise ValueError(f"No account for {request.user_id}")

    return handler_registry


@pytest.fixture
def alerting(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.WEBHOOKS = {**settings.WEBHOOKS, "PUBLIC_BASE_URL": "https://h.example"}
    watches_clear()
    for kind in (AlertKind.HANDLER_FAILING, AlertKind.FOLLOW_UP_DEAD):
        AlertRecipientFactory(rule=AlertRuleFactory(kind=kind, threshold=1))
    yield
    watches_clear()


@pytest.fixture
def seeded(deliver, bot, handlers, alerting) -> list[int]:
    """The person everywhere: events, answers, runs, replays, tasks, alerts."""
    headers = {"HTTP_X_CUSTOMER_REF": MARKER}
    assert deliver(delivery("echo-form"), **headers).status_code == 200
    assert deliver(delivery("failing-form"), **headers).status_code == 500
    # A copy of the first delivery, and a request refused for its token
    # whose claims (decoded for diagnosis) and body name the person.
    deliver(delivery("echo-form", id="d-1"), **headers)
    deliver(delivery("echo-form", id="d-1"), **headers)
    body = json.dumps(delivery("echo-form")).encode()
    refused = deliver(
        body=body, token=sign_token("not-the-secret-" + "x" * 32, body=body, user=USER)
    )
    assert refused.status_code == 401
    work_off_queue()  # the follow-ups die, the alerts go out
    work_off_queue()
    for event in WebhookEvent.objects.filter(user_id=USER, duplicate_of=None):
        webhook_event_replay(event=event)
    work_off_queue()
    found = marker_found()
    # Everywhere it can reach, to prove the scan would see it.
    for where in (
        "submissions_webhookevent.payload",
        "submissions_webhookevent.raw_body",
        "submissions_webhookevent.headers",
        "submissions_webhookevent.token_info",
        "submissions_webhookevent.response_body",
        "submissions_webhookevent.error_detail",
        "submissions_webhookevent.user_id",
        "submissions_handlerrun.reply",
        "submissions_handlerrun.message",
        "submissions_handlerrun.traceback",
        "submissions_formanswer.value",
        "submissions_formsubmission.user_id",
    ):
        assert any(spot.startswith(where + " ") for spot in found), where
    assert SentAlert.objects.filter(kind=AlertKind.FOLLOW_UP_DEAD).exists()
    assert SentAlert.objects.filter(kind=AlertKind.HANDLER_FAILING).exists()
    assert DBTaskResult.objects.filter(task_path__contains="follow_up").exists()
    return list(WebhookEvent.objects.values_list("pk", flat=True))


def staff(*codenames: str) -> User:
    user = User.objects.create_user("eraser", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def erase_with_the_command() -> None:
    call_command(
        "erase_personal_data", "--user-id", USER, "--yes", stdout=io.StringIO()
    )


def erase_in_the_admin() -> None:
    client = Client()
    client.force_login(
        staff("view_formsubmission", "view_webhookevent", "erase_personal_data")
    )
    url = reverse("admin:submissions_webhookevent_changelist")
    event = WebhookEvent.objects.filter(user_id=USER).first()
    post = {"action": "erase_personal_data", "_selected_action": [event.pk]}
    done = client.post(url, {**post, "confirm": "yes"}, follow=True)
    assert "Erased the data of 1 person(s)" in done.content.decode()


def assert_nothing_left() -> None:
    assert marker_found() == []
    assert all(
        MARKER.lower() not in m.message().as_string().lower() for m in mail.outbox
    )
    log = ErasureLog.objects.latest("pk")
    assert MARKER not in log.selector_hash


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("erase", [erase_with_the_command, erase_in_the_admin])
def test_nothing_of_the_person_survives_anywhere(seeded, erase, admin_client):
    erase()
    work_off_queue()  # anything still queued finds nothing

    assert_nothing_left()
    erased = WebhookEvent.objects.filter(pk__in=seeded, erased_at__isnull=False)
    assert erased.count() == len(seeded)  # the refused request too
    for path in ("/api/events/", "/api/submissions/", "/api/submissions/?format=csv"):
        response = admin_client.get(path)
        body = (
            b"".join(response.streaming_content)
            if response.streaming
            else response.content
        )
        assert MARKER.lower().encode() not in body.lower()


# -- races: deterministic, on every database ---------------------------------------


@pytest.fixture
def erasing_handler(handler_registry):
    """A handler whose person is erased while it runs (the erasure commits first)."""

    @register
    class ErasedMeanwhile(WebhookHandler):
        name = "erased-meanwhile"

        def handle(self, request, response):
            personal_data_erase(
                selector="user_id", value=request.user_id, erased_by="t", source="test"
            )
            response.add_text(f"Thanks {request.form_values['name']}")
            raise_it = request.payload.get("raise")
            if raise_it:
                raise ValueError(f"Could not reach {request.form_values['email']}")

    return handler_registry


@pytest.mark.django_db
@pytest.mark.parametrize("fails", [False, True])
def test_a_run_recorded_after_the_erasure_keeps_nothing(
    deliver, erasing_handler, fails
):
    response = deliver(delivery("erased-meanwhile", **({"raise": 1} if fails else {})))

    assert response.status_code == (500 if fails else 200)  # as without erasure
    event = WebhookEvent.objects.get()
    assert event.erased_at is not None
    assert event.status == (
        WebhookEvent.Status.FAILED if fails else WebhookEvent.Status.PROCESSED
    )
    run = HandlerRun.objects.get()
    assert (run.reply, run.message, run.traceback) == (None, "", "")
    assert marker_found() == []


@pytest.mark.django_db
def test_a_replay_recorded_after_the_erasure_keeps_nothing(deliver, handler_registry):
    @register
    class Plain(WebhookHandler):
        name = "plain"

        def handle(self, request, response):
            response.add_text(f"Thanks {request.form_values['name']}")

    deliver(delivery("plain"))
    event = WebhookEvent.objects.get()

    class Plain2(WebhookHandler):  # today's code: the person is erased meanwhile
        name = "plain"

        def handle(self, request, response):
            personal_data_erase(
                selector="user_id", value=USER, erased_by="t", source="test"
            )
            response.add_text(f"Thanks again {request.form_values['name']}")

    handler_registry._registry["plain"] = Plain2
    run = webhook_event_replay(event=event)

    run.refresh_from_db()
    assert run.trigger == HandlerRun.Trigger.REPLAY
    assert run.reply is None
    assert marker_found() == []


@pytest.mark.django_db
def test_a_delivery_stored_while_the_erasure_runs_is_erased_too(deliver, handlers):
    """Between the erasure's choice of rows and its writes, a delivery arrives."""
    deliver(delivery("echo-form"))
    arrived: list[Any] = []

    def deliver_in_between(execute, sql, params, many, context):
        if not arrived and sql.startswith('UPDATE "submissions_webhookevent"'):
            arrived.append(None)  # once: the delivery's own UPDATEs pass through
            arrived[0] = deliver(delivery("echo-form", id="late"))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(deliver_in_between):
        counts = personal_data_erase(
            selector="user_id", value=USER, erased_by="t", source="test"
        )

    assert arrived[0].status_code == 200
    assert counts.events == 2
    assert marker_found() == []


# -- races: real threads on PostgreSQL -----------------------------------------------

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL"
)


def in_thread(target, *args: Any) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(target(*args))
        except Exception as exc:  # noqa: BLE001 - the test asserts on it
            result.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_threads_a_delivery_committed_during_the_erasure_is_erased(deliver, handlers):
    deliver(delivery("echo-form"))
    chosen, stored = threading.Event(), threading.Event()

    def erase() -> Any:
        def pause_after_choosing(execute, sql, params, many, context):
            if not chosen.is_set() and sql.startswith(
                'UPDATE "submissions_webhookevent"'
            ):
                chosen.set()
                assert stored.wait(30)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(pause_after_choosing):
            return personal_data_erase(
                selector="user_id", value=USER, erased_by="t", source="test"
            )

    eraser, erased = in_thread(erase)
    assert chosen.wait(30)
    other, replied = in_thread(deliver, delivery("echo-form", id="late"))
    other.join(30)
    stored.set()
    eraser.join(30)

    assert replied[0].status_code == 200
    assert erased[0].events == 2
    work_off_queue()
    assert marker_found() == []


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_threads_a_replay_whose_run_ends_after_the_erasure_keeps_nothing(
    deliver, handler_registry
):
    entered, release = threading.Event(), threading.Event()

    @register
    class Slow(WebhookHandler):
        name = "slow"

        def handle(self, request, response):
            if request.payload.get("replayed"):
                entered.set()
                assert release.wait(30)
            response.add_text(f"Thanks {request.form_values['name']}")

    deliver(delivery("slow"))
    event = WebhookEvent.objects.get()
    WebhookEvent.objects.filter(pk=event.pk).update(
        payload={**event.payload, "replayed": True}
    )
    event.refresh_from_db()

    replayer, runs = in_thread(lambda: webhook_event_replay(event=event))
    assert entered.wait(30)
    personal_data_erase(selector="user_id", value=USER, erased_by="t", source="test")
    release.set()
    replayer.join(30)

    assert isinstance(runs[0], HandlerRun)
    assert HandlerRun.objects.get(pk=runs[0].pk).reply is None
    assert marker_found() == []
