"""/metrics through the real endpoint: refused without its token, counting with it.

In one process (no PROMETHEUS_MULTIPROC_DIR) the series live in the default
registry for the whole test session, so each test compares a scrape before
and after what it does. test_multiprocess.py runs real gunicorn workers.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.management import call_command
from django.db import connection
from django_tasks_db.models import DBTaskResult
from prometheus_client.parser import text_string_to_metric_families

from alerts.models import AlertKind, Channel, SentAlert
from handlers import WebhookHandler, register
from submissions.models import HandlerRun, WebhookEvent
from tests.factories import WebhookEventFactory

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def scrape(client, settings) -> Callable[[], Samples]:
    settings.METRICS_TOKEN = TOKEN

    def _scrape() -> Samples:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        return parse(response.content.decode())

    return _scrape


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# -- who may scrape -------------------------------------------------------------


def test_without_a_configured_token_there_are_no_metrics(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "DJANGO_METRICS_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Token {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
def test_a_missing_or_wrong_token_is_401_json(client, settings, authorization):
    settings.METRICS_TOKEN = TOKEN
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"webhooks_" not in response.content


def test_metrics_answer_before_host_checks_and_the_https_redirect(scrape, settings):
    # Prometheus scrapes each backend by its own address over plain HTTP.
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["hooks.example.com"]
    assert ("webhooks_metrics_database_up", ()) in scrape()


# -- what is counted ---------------------------------------------------------------


def test_deliveries_are_counted_by_bot_handler_and_status(deliver, scrape):
    before = scrape()
    for n in range(3):
        assert deliver({"handler": "save-form", "id": f"m-{n}"}).status_code == 200
    assert deliver({"handler": "no-such-handler", "id": "m-x"}).status_code == 404
    assert deliver({"handler": "save-form"}, token="not.a.jwt").status_code == 401
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    total = "webhooks_deliveries_total"
    assert delta(total, bot="demo", handler="save-form", status="processed") == 3
    # A caller's handler name is not a label: unknown names collapse.
    assert delta(total, bot="demo", handler="unknown", status="unrouted") == 1
    assert not any(
        dict(labels).get("handler") == "no-such-handler" for _, labels in after
    )
    # A refused request has no handler, and counts under its token's error.
    assert delta(total, bot="demo", handler="", status="rejected") == 1
    assert (
        delta("webhooks_rejected_tokens_total", bot="demo", code="malformed_token") == 1
    )
    # Each answered delivery is one duration observation; each run one more.
    assert delta("webhooks_delivery_duration_seconds_count", bot="demo") == 5
    runs = "webhooks_handler_duration_seconds_count"
    assert delta(runs, handler="save-form", outcome="succeeded") == 3
    assert WebhookEvent.objects.count() == 5  # every one stored


def test_a_handler_past_its_deadline_counts_as_a_time_out(
    deliver, scrape, handler_registry, settings
):
    @register
    class Slow(WebhookHandler):
        name = "metrics-slow"
        deadline_seconds = 0.05

        async def handle(self, request, response) -> None:
            import asyncio

            await asyncio.sleep(5)

    before = scrape()
    response = deliver({"handler": "metrics-slow", "id": "slow-1"})
    after = scrape()

    assert response.status_code == 200  # the fallback reply
    labels = {"bot": "demo", "handler": "metrics-slow"}
    assert (
        value(after, "webhooks_handler_timeouts_total", **labels)
        - value(before, "webhooks_handler_timeouts_total", **labels)
        == 1
    )
    outcome = {"handler": "metrics-slow", "outcome": "timed_out"}
    count = "webhooks_handler_duration_seconds_count"
    assert value(after, count, **outcome) - value(before, count, **outcome) == 1


def test_queue_depth_dead_follow_ups_and_alerts_are_read_from_the_database(scrape, bot):
    event = WebhookEventFactory(bot=bot)
    before = scrape()
    HandlerRun.objects.create(
        event=event,
        attempt=2,
        trigger=HandlerRun.Trigger.FOLLOW_UP,
        handler_name="save-form",
        started_at=event.received_at,
        finished_at=event.received_at,
        duration_ms=1.0,
        outcome=HandlerRun.Outcome.DEAD,
    )
    from submissions.followups import run_follow_up

    run_follow_up.enqueue(event.pk)
    SentAlert.objects.create(
        kind=AlertKind.HANDLER_FAILING,
        key="k",
        channel=Channel.EMAIL,
        recipient_shown="ops@example.com",
        subject="s",
        body="b",
        status=SentAlert.Status.SENT,
    )
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("webhooks_follow_ups_dead") == 1
    assert delta("webhooks_follow_up_queue_depth") == 1
    assert delta("webhooks_task_queue_depth", queue="default") == 1
    sent = {"kind": AlertKind.HANDLER_FAILING, "channel": Channel.EMAIL}
    assert delta("webhooks_alerts_sent_total", **sent) == 1
    assert value(after, "webhooks_metrics_database_up") == 1


# -- /readyz -------------------------------------------------------------------------


def test_readyz_round_trips_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    partitioned = body.pop("partitions", None)
    assert body == {"status": "ready", "database": True, "migrated": True}
    # PostgreSQL's partitioned tables: the months made ahead, no warning.
    if connection.vendor == "postgresql":
        assert partitioned["months_ahead"] >= 3
        assert "warning" not in partitioned
    else:
        assert partitioned is None
    assert response["Cache-Control"] == "no-store"
    assert client.post("/readyz").status_code == 405


@pytest.mark.django_db(transaction=True)  # the worker commits as it goes
def test_readyz_with_task_keeps_one_probe_waiting_and_sees_it_taken(client):
    first = client.get("/readyz?task=1")
    second = client.get("/readyz?task=1")

    assert first.status_code == second.status_code == 200
    assert first.json()["tasks"]["queue"] is True
    probes = DBTaskResult.objects.filter(
        task_path="observability.tasks.readiness_probe"
    )
    assert probes.filter(status="READY").count() == 1  # not one per probe

    call_command(
        "db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0
    )
    client.get("/readyz?task=1")  # a new probe, since the last one was taken
    call_command(
        "db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0
    )
    # Each probe's run deletes the finished ones before it.
    assert probes.count() == 1
    assert probes.get().status == "SUCCESSFUL"


def test_readyz_with_task_is_503_when_no_worker_takes_the_probe(client, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.READYZ_TASK_LAG_SECONDS = 60
    client.get("/readyz?task=1")
    DBTaskResult.objects.filter(status="READY").update(
        enqueued_at=timezone.now() - timedelta(minutes=5)
    )

    response = client.get("/readyz?task=1")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["tasks"]["worker"] is False
    assert body["tasks"]["waiting_seconds"] >= 300
    assert client.get("/readyz").status_code == 200  # the web side is still fine


def test_the_months_partitioned_ahead_are_a_series_where_there_are_partitions(scrape):
    from submissions.services import partitions

    samples = scrape()
    if partitions.is_partitioned():
        assert value(samples, "webhooks_partitions_ahead") == partitions.months_ahead()
        assert value(samples, "webhooks_partitions_ahead") >= 3
    else:  # SQLite's plain tables: no such series, the rule never fires
        assert ("webhooks_partitions_ahead", ()) not in samples
