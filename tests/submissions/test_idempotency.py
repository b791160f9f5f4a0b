import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from handlers import WebhookHandler, register
from submissions.models import Bot, FormSubmission, HandlerRun, WebhookEvent
from submissions.services import runs
from submissions.tokens import sign_token
from tests.factories import BotFactory

pytestmark = pytest.mark.django_db

PAYLOAD = {"handler": "save-form", "id": "delivery-7", "formValues": {"email": "a@b.c"}}


def test_a_duplicate_gets_the_originals_reply_and_runs_nothing(deliver):
    first = deliver(PAYLOAD)
    second = deliver(PAYLOAD)

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    original = WebhookEvent.objects.get(duplicate_of=None)
    duplicate = WebhookEvent.objects.get(status=WebhookEvent.Status.DUPLICATE)
    assert duplicate.duplicate_of == original
    assert second["X-Webhook-Original-Event-Id"] == str(original.pk)
    assert second["X-Webhook-Event-Id"] == str(duplicate.pk)
    assert duplicate.response_status == 200
    assert FormSubmission.objects.count() == 1
    assert HandlerRun.objects.count() == 1


def test_a_duplicate_of_a_failed_delivery_gets_the_same_error(
    deliver, handler_registry
):
    @register
    class Broken(WebhookHandler):
        name = "broken"

        def handle(self, request, response):
            raise RuntimeError("boom")

    payload = {**PAYLOAD, "handler": "broken"}
    assert deliver(payload).status_code == 500
    again = deliver(payload)
    assert again.status_code == 500
    assert again.json()["error"] == "handler_error"
    assert HandlerRun.objects.count() == 1


@pytest.mark.parametrize(
    ("where", "kwargs"),
    [
        ("eventId", {}),
        ("header", {"HTTP_IDEMPOTENCY_KEY": "key-1"}),
    ],
)
def test_delivery_id_sources(deliver, where, kwargs):
    payload = {"handler": "save-form"} | (
        {"eventId": "e-1"} if where == "eventId" else {}
    )
    deliver(payload, **kwargs)
    deliver(payload, **kwargs)
    assert WebhookEvent.objects.filter(status="duplicate").count() == 1


def test_the_tokens_jti_is_the_last_source_of_a_delivery_id(deliver, bot):
    body = json.dumps({"handler": "save-form"}).encode()
    token = sign_token(bot.secret, body=body, jti="jwt-id-1")
    deliver(body=body, token=token)
    deliver(body=body, token=token)
    assert WebhookEvent.objects.get(duplicate_of=None).delivery_id == "jwt-id-1"
    assert WebhookEvent.objects.filter(status="duplicate").count() == 1


def test_without_any_delivery_id_every_post_is_processed(deliver):
    deliver({"handler": "save-form"})
    deliver({"handler": "save-form"})
    assert WebhookEvent.objects.filter(status="processed").count() == 2


def test_delivery_ids_are_unique_per_bot_not_globally(deliver):
    other = BotFactory()
    deliver(PAYLOAD)
    assert deliver(PAYLOAD, to=other).status_code == 200
    assert WebhookEvent.objects.filter(status="processed").count() == 2


def test_a_rejected_delivery_does_not_block_its_valid_retry(deliver):
    assert deliver(PAYLOAD, token=None).status_code == 401
    assert deliver(PAYLOAD).status_code == 200
    assert FormSubmission.objects.count() == 1


def test_an_original_with_no_reply_past_its_deadline_answers_409(deliver, bot):
    # Stored, but its run has not answered by its handler's deadline (8 s,
    # plus the time to record it), and it is not yet past the lease.
    WebhookEvent.objects.create(
        bot=bot,
        handler_name="save-form",
        delivery_id="delivery-7",
        received_at=timezone.now() - timedelta(seconds=20),
    )
    started = time.monotonic()
    response = deliver(PAYLOAD)
    assert time.monotonic() - started < 5  # it did not wait: nothing to wait for
    assert response.status_code == 409
    assert response.json()["error"] == "delivery_in_progress"
    assert response["Retry-After"] == "1"
    assert WebhookEvent.objects.get(status="duplicate").response_status == 409


def test_a_copy_waits_for_an_in_flight_original_until_its_deadline(
    deliver, bot, settings
):
    # In flight (received now, no reply yet) and never finishing: the copy
    # waits out the handler's deadline, then answers 409.
    settings.WEBHOOKS = {**settings.WEBHOOKS, "HANDLER_DEADLINE_SECONDS": 0.2}
    WebhookEvent.objects.create(
        bot=bot, handler_name="save-form", delivery_id="delivery-7"
    )
    response = deliver(PAYLOAD)
    assert response.status_code == 409
    assert response["Retry-After"] == "1"
    assert WebhookEvent.objects.get(status="duplicate").response_status == 409


def test_the_database_refuses_a_second_original():
    from django.db import IntegrityError, transaction

    bot = BotFactory()
    WebhookEvent.objects.create(bot=bot, delivery_id="d")
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookEvent.objects.create(bot=bot, delivery_id="d")


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="real write concurrency needs PostgreSQL"
)
def test_concurrent_copies_of_one_delivery_are_processed_once(handler_registry):
    bot = BotFactory(slug="race")
    slow = threading.Event()

    @register
    class Slow(WebhookHandler):
        name = "slow"

        def handle(self, request, response):
            slow.wait(0.2)  # keep the original in flight while the copies arrive
            response.add_text("done")

    body = json.dumps(
        {"handler": "slow", "id": "same", "formValues": {"q": "a"}}
    ).encode()
    token = sign_token(bot.secret, body=body)
    copies = 8
    barrier = threading.Barrier(copies)
    statuses: list[int] = []

    def post():
        try:
            barrier.wait()
            response = Client().post(
                reverse("webhook", args=["race"]),
                data=body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(statuses) == copies
    assert statuses == [200] * copies  # the copies waited for the original
    assert WebhookEvent.objects.filter(status="processed").count() == 1
    assert WebhookEvent.objects.filter(status="duplicate").count() == copies - 1
    assert FormSubmission.objects.count() == 1
    assert HandlerRun.objects.count() == 1


def test_an_abandoned_original_is_taken_over_by_its_next_copy(deliver, bot, settings):
    # Its process died after storing it: still `received`, no reply, past the lease.
    settings.WEBHOOKS = {"IN_FLIGHT_LEASE_SECONDS": 60}
    original = WebhookEvent.objects.create(
        bot=bot,
        handler_name="save-form",
        delivery_id="delivery-7",
        payload=PAYLOAD,
        received_at=timezone.now() - timedelta(seconds=61),
    )
    response = deliver(PAYLOAD)

    assert response.status_code == 200
    assert response.json()["blocks"][0]["text"].startswith("Thank you")
    assert response["X-Webhook-Original-Event-Id"] == str(original.pk)
    original.refresh_from_db()
    assert (original.status, original.response_status) == ("processed", 200)
    assert list(original.runs.values_list("attempt", "outcome")) == [(1, "succeeded")]
    copy = WebhookEvent.objects.get(status="duplicate")
    assert (copy.duplicate_of, copy.response_status) == (original, 200)
    # A later copy gets the stored reply and runs nothing.
    assert deliver(PAYLOAD).json() == response.json()
    assert HandlerRun.objects.count() == 1


def _abandoned(bot, *, seconds_ago: float, claimed_seconds_ago: float | None = None):
    now = timezone.now()
    return WebhookEvent.objects.create(
        bot=bot,
        handler_name="save-form",
        delivery_id="delivery-7",
        payload=PAYLOAD,
        received_at=now - timedelta(seconds=seconds_ago),
        claimed_at=None
        if claimed_seconds_ago is None
        else now - timedelta(seconds=claimed_seconds_ago),
    )


def test_a_take_over_claims_the_original_with_a_new_lease(deliver, bot, settings):
    settings.WEBHOOKS = {"IN_FLIGHT_LEASE_SECONDS": 60}
    original = _abandoned(bot, seconds_ago=61)
    before = timezone.now()
    assert deliver(PAYLOAD).status_code == 200
    original.refresh_from_db()
    assert original.claimed_at >= before


def test_a_recent_claim_is_respected_a_stale_one_taken_over_again(
    deliver, bot, settings
):
    settings.WEBHOOKS = {"IN_FLIGHT_LEASE_SECONDS": 60}
    # Claimed 10 s ago by a copy whose process may still be running it.
    original = _abandoned(bot, seconds_ago=300, claimed_seconds_ago=10)
    response = deliver(PAYLOAD)
    assert response.status_code == 409
    assert response.json()["error"] == "delivery_in_progress"
    assert not original.runs.exists()
    # That copy's process died too: after its lease, the next copy runs it.
    WebhookEvent.objects.filter(pk=original.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=61)
    )
    assert deliver(PAYLOAD).status_code == 200
    original.refresh_from_db()
    assert (original.status, original.runs.count()) == ("processed", 1)


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_while_a_taken_over_handler_runs(
    deliver, bot, settings, handler_registry
):
    seen = []

    handler_registry._registry.pop("save-form")

    @register
    class Looks(WebhookHandler):
        name = "save-form"

        def handle(self, request, response):
            seen.append(connection.in_atomic_block)
            response.add_text("ok")

    settings.WEBHOOKS = {"IN_FLIGHT_LEASE_SECONDS": 60, "HANDLER_THREADS": 0}
    _abandoned(bot, seconds_ago=61)
    assert deliver(PAYLOAD).status_code == 200
    assert seen == [False]  # no row lock held across the handler


def test_a_run_and_its_status_commit_together(deliver, handler_registry, monkeypatch):
    @register
    class Writes(WebhookHandler):
        name = "writes"

        def handle(self, request, response):
            BotFactory(slug=f"handler-write-{request.delivery_id}")
            response.add_text("ok")

    # The status UPDATE fails in the database itself (it would give the event
    # a delivery id another event holds): the run's INSERT, in the same
    # statement (PostgreSQL) or transaction (SQLite), must go with it.
    deliver({"handler": "writes", "id": "taken", "formValues": {"a": 1}})
    taken = WebhookEvent.objects.get()
    real = runs._finish_fields
    monkeypatch.setattr(
        runs,
        "_finish_fields",
        lambda **finish: {**real(**finish), "delivery_id": "taken"},
    )
    response = deliver({"handler": "writes", "id": "k-1", "formValues": {"a": 1}})

    assert response.status_code == 503
    assert response.json()["error"] == "storage_failed"
    event = WebhookEvent.objects.exclude(pk=taken.pk).get()
    assert (event.status, event.response_status) == ("received", None)
    assert not event.runs.exists()  # its run went with the status
    # The handler ran outside any transaction: its own write is its own, and
    # a take-over runs it again (handlers that write should be idempotent).
    assert Bot.objects.filter(slug="handler-write-k-1").exists()
    assert FormSubmission.objects.filter(event=event).exists()  # stored, kept
