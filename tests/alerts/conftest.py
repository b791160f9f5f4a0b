"""Alerts' test kit: a real HTTP receiver, the task worker, the email outbox, time passing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import F
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from alerts.models import AlertKind, AlertRule, AlertState, Channel
from alerts.selectors import watches_clear
from tests.alerts.factories import AlertRecipientFactory, AlertRuleFactory

OPS_EMAIL = "ops@example.com"
LOOPBACK_ALLOWED = {"WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.1/32"]}


@pytest.fixture(autouse=True)
def _alerts_test_settings(settings) -> Iterator[None]:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.WEBHOOKS = {"PUBLIC_BASE_URL": "https://hooks.example.com"}
    # The receiver below listens on loopback, which alert webhooks may not
    # reach by default (tests/alerts/test_hostile_alerts.py proves it).
    settings.ALERTS = LOOPBACK_ALLOWED
    # The rule cache is per process: a rule from an earlier test (flushed
    # without a post_delete) must not be seen by the next one.
    watches_clear()
    yield
    watches_clear()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    """An incoming-webhook endpoint on 127.0.0.1, as Slack or Teams would run one."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    #: Answers to give, in order: (status, seconds to wait first); then 200 at once.
    answers: list[tuple[int, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_answer(self) -> tuple[int, float]:
        with self.lock:
            return self.answers.pop(0) if self.answers else (200, 0.0)

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, wait = state.next_answer()
            state.requests.append(
                Received(self.path, dict(self.headers), json.loads(raw))
            )
            time.sleep(wait)
            body = b"ok" if status < 300 else b"no_service"
            try:
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "https://elsewhere.example.com/")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up waiting
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/services/T0/B0/secretpart"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def work_off_queue() -> None:
    """Run every task that is due, as `manage.py db_worker` does."""
    call_command(
        "db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0
    )


def make_due() -> None:
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())


def queued_task_names() -> list[str]:
    return [t.task_path for t in DBTaskResult.objects.filter(status="READY")]


def time_passes(delta: timedelta) -> None:
    """Move every open alert window ``delta`` into the past."""
    AlertState.objects.update(
        window_started_at=F("window_started_at") - delta,
        last_sent_at=F("last_sent_at") - delta,
        first_pending_at=F("first_pending_at") - delta,
        last_incident_at=F("last_incident_at") - delta,
    )


MakeRule = Callable[..., AlertRule]


@pytest.fixture
def make_rule(db) -> MakeRule:
    """A rule of ``kind`` with an email recipient and, given ``webhook``, a webhook one."""

    def make(
        kind: str = AlertKind.HANDLER_FAILING,
        *,
        email: str | None = OPS_EMAIL,
        webhook: str | None = None,
        **fields: Any,
    ) -> AlertRule:
        rule = AlertRuleFactory(kind=kind, **fields)
        if email:
            AlertRecipientFactory(rule=rule, channel=Channel.EMAIL, target=email)
        if webhook:
            AlertRecipientFactory(rule=rule, channel=Channel.WEBHOOK, target=webhook)
        return rule

    return make
