"""Handlers that wait on the outside world: async handlers, the deadline, no open transaction.

The outside world is a real HTTP server started by the test (a CRM that
answers slowly); the handlers call it with httpx, as docs/handlers.md shows.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, transaction

from handlers import InvalidHandler, WebhookHandler, register
from submissions.models import HandlerRun, WebhookEvent
from submissions.replay import webhook_event_replay

pytestmark = pytest.mark.django_db

FORM = {"handler": "crm-lookup", "userId": "u-1", "formValues": {"email": "a@b.c"}}


class CRM(BaseHTTPRequestHandler):
    """A CRM that takes ``?delay=`` seconds to answer ``{"name": "Ada"}``."""

    def do_GET(self) -> None:
        delay = float(self.path.partition("delay=")[2] or 0)
        time.sleep(delay)
        body = json.dumps({"name": "Ada"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def crm_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), CRM)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def async_lookup(handler_registry, crm_url):
    """The docs' async handler: it asks the CRM for the user's name."""
    seen: dict[str, object] = {}

    @register
    class CRMLookup(WebhookHandler):
        name = "crm-lookup"
        deadline_seconds = 2.0
        fallback_text = "Still looking you up..."

        async def handle(self, request, response):
            delay = request.payload.get("delay", 0)
            seen["in_transaction"] = connection.in_atomic_block
            try:
                async with httpx.AsyncClient(timeout=5) as client:
                    answer = await client.get(f"{crm_url}/users?delay={delay}")
            except asyncio.CancelledError:
                seen["cancelled"] = True
                raise
            response.add_text(f"Hello {answer.json()['name']}!")

    return seen


def test_an_async_handler_is_awaited_and_its_reply_sent(deliver, async_lookup):
    response = deliver(FORM)

    assert response.status_code == 200
    assert response.json()["blocks"] == [{"type": "text", "text": "Hello Ada!"}]
    run = HandlerRun.objects.get()
    assert run.outcome == HandlerRun.Outcome.SUCCEEDED
    assert run.reply == response.json()


def test_an_async_handler_past_its_deadline_is_cancelled_and_the_fallback_sent(
    deliver, async_lookup
):
    started = time.monotonic()
    response = deliver({**FORM, "delay": 4})
    waited = time.monotonic() - started

    assert response.status_code == 200
    assert response.json()["blocks"] == [
        {"type": "text", "text": "Still looking you up..."}
    ]
    assert waited < 3.5  # answered at the 2 s deadline, not after the CRM's 4 s
    assert async_lookup["cancelled"] is True
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.FAILED
    assert event.error_code == "handler_timeout"
    assert event.response_status == 200
    assert event.response_body == response.json()
    run = event.runs.get()
    assert run.outcome == HandlerRun.Outcome.TIMED_OUT
    assert run.duration_ms >= 2000
    assert "did not finish within 2 s" in run.message


def test_a_timed_out_event_replays_and_is_in_the_dead_letter_list(
    deliver, async_lookup, admin_client
):
    deliver({**FORM, "delay": 4})
    event = WebhookEvent.objects.get()
    dead_letter = admin_client.get(
        "/admin/submissions/handlerrun/", {"outcome__exact": "timed_out"}
    )
    assert f"Event #{event.pk}" in dead_letter.content.decode()

    event.payload = {**event.payload, "delay": 0}  # the CRM is fast again
    run = webhook_event_replay(event=event)

    assert run.outcome == HandlerRun.Outcome.SUCCEEDED
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_while_a_handler_waits(deliver, async_lookup, settings):
    deliver(FORM)
    assert async_lookup["in_transaction"] is False


def _message_when_free(run: HandlerRun) -> str:
    """The run's message, or "" while SQLite's in-memory test database has the
    table locked for the handler thread's write (shared-cache locks do not
    wait)."""
    try:
        return HandlerRun.objects.get(pk=run.pk).message
    except OperationalError:
        return ""


@pytest.mark.django_db(transaction=True)
def test_a_def_handler_past_its_deadline_runs_on_and_its_late_end_is_recorded(
    deliver, handler_registry, crm_url, settings
):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "HANDLER_THREADS": 4}
    finished = threading.Event()

    @register
    class SlowLookup(WebhookHandler):
        name = "slow-lookup"
        deadline_seconds = 0.5

        def handle(self, request, response):
            with httpx.Client(timeout=5) as client:
                answer = client.get(f"{crm_url}/users?delay=1.5")
            response.add_text(f"Hello {answer.json()['name']}!")
            finished.set()

    response = deliver({"handler": "slow-lookup"})

    assert response.status_code == 200
    fallback = settings.WEBHOOKS["HANDLER_FALLBACK_TEXT"]
    assert response.json()["blocks"] == [{"type": "text", "text": fallback}]
    run = HandlerRun.objects.get()
    assert run.outcome == HandlerRun.Outcome.TIMED_OUT
    assert finished.wait(timeout=10)
    deadline = time.monotonic() + 10
    while "late" not in _message_when_free(run):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    run.refresh_from_db()
    assert run.message.startswith("The handler finished late")
    assert run.reply["blocks"] == [{"type": "text", "text": "Hello Ada!"}]
    # What the bot got stays the fallback.
    assert WebhookEvent.objects.get().response_body == response.json()


@pytest.mark.django_db(transaction=True)
def test_a_def_handler_within_its_deadline_runs_in_a_handler_thread(
    deliver, handler_registry, settings
):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "HANDLER_THREADS": 4}
    threads: list[str] = []

    @register
    class Quick(WebhookHandler):
        name = "quick"

        def handle(self, request, response):
            threads.append(threading.current_thread().name)
            response.add_text("quick")

    response = deliver({"handler": "quick"})

    assert response.json()["blocks"] == [{"type": "text", "text": "quick"}]
    assert threads[0].startswith("webhook-handler")


def test_a_def_handler_returning_a_coroutine_has_it_awaited(deliver, handler_registry):
    @register
    class Wrapped(WebhookHandler):
        name = "wrapped"

        def handle(self, request, response):
            async def later():
                await asyncio.sleep(0)
                response.add_text("awaited")

            return later()

    response = deliver({"handler": "wrapped"})

    assert response.json()["blocks"] == [{"type": "text", "text": "awaited"}]


@pytest.mark.parametrize("method", ["handle", "follow_up"])
@pytest.mark.parametrize("kind", ["generator", "async generator"])
def test_a_handler_the_project_cannot_run_is_refused_at_registration(
    handler_registry, method, kind
):
    if kind == "generator":

        def body(self, *args):
            yield

    else:

        async def body(self, *args):
            yield

    attrs = {"name": "yields", "handle": lambda self, request, response: None}
    attrs[method] = body
    handler = type("Yields", (WebhookHandler,), attrs)

    with pytest.raises(InvalidHandler, match=f"Yields.{method} yields"):
        register(handler)


@pytest.mark.django_db(transaction=True)
def test_an_async_follow_up_runs_in_the_worker(deliver, handler_registry, crm_url):
    names: list[str] = []

    @register
    class Push(WebhookHandler):
        name = "push"

        def handle(self, request, response):
            response.add_text("Thanks!")

        async def follow_up(self, request):
            async with httpx.AsyncClient(timeout=5) as client:
                answer = await client.get(f"{crm_url}/users")
            names.append(answer.json()["name"])

    deliver({"handler": "push"})
    call_command(
        "db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0
    )

    assert names == ["Ada"]
    runs = WebhookEvent.objects.get().runs.values_list("trigger", "outcome")
    assert list(runs) == [("delivery", "succeeded"), ("follow_up", "succeeded")]


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="pg_stat_activity is PostgreSQL's"
)
@pytest.mark.django_db(transaction=True)
def test_no_connection_is_idle_in_a_transaction_while_a_handler_waits(
    deliver, handler_registry
):
    states: list[int] = []

    @register
    class Probe(WebhookHandler):
        name = "probe"

        def handle(self, request, response):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                    "current_database() AND state LIKE 'idle in transaction%%'"
                )
                states.append(cursor.fetchone()[0])
            response.add_text("ok")

    with transaction.atomic():
        pass  # nothing of the test's own is open either
    deliver({"handler": "probe"})

    assert states == [0]


POOLED_WAIT = """
import asyncio, json, sys, time, wsgiref.util
import django
django.setup()
from django.db import connection
from handlers import WebhookHandler, register
from submissions.tokens import sign_token
from webhookproject.wsgi import application

seen = {}

@register
class Waits(WebhookHandler):
    name = "waits"

    %(kind)s handle(self, request, response):
        %(wait)s  # on an API, say
        # The request thread's connection is back in the pool by now.
        seen["available"] = connection.pool.get_stats().get("pool_available")
        response.add_text("ok")

body = json.dumps({"handler": "waits", "formValues": {"a": "1"}}).encode()
environ = {
    "PATH_INFO": "/webhooks/pooled/", "REQUEST_METHOD": "POST",
    "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
    "HTTP_AUTHORIZATION": "Bearer " + sign_token(sys.argv[1], body=body),
}
wsgiref.util.setup_testing_defaults(environ)
import io
environ["wsgi.input"] = io.BytesIO(body)
statuses = []
b"".join(application(environ, lambda status, headers: statuses.append(status)))
print(json.dumps({"status": statuses[0], "available": seen.get("available")}))
"""


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the pool is psycopg's (PostgreSQL)"
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("kind", "wait"),
    [("def", "time.sleep(0.1)"), ("async def", "await asyncio.sleep(0.1)")],
)
def test_a_pooled_connection_goes_back_to_the_pool_while_the_handler_waits(kind, wait):
    import subprocess
    import sys

    from tests.factories import BotFactory
    from tests.webhookproject.test_serving import ROOT, clean_env, database_url

    bot = BotFactory(slug="pooled")
    result = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", POOLED_WAIT % {"kind": kind, "wait": wait}, bot.secret],
        cwd=ROOT,
        env=clean_env(
            DATABASE_URL=database_url(),
            DJANGO_DB_POOL="true",
            DJANGO_DB_POOL_MIN_SIZE="1",
            DJANGO_DB_POOL_MAX_SIZE="1",
            DJANGO_SECURE_SSL_REDIRECT="false",
            DJANGO_LOG_LEVEL="CRITICAL",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer == {"status": "200 OK", "available": 1}, result.stderr[-2000:]
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.PROCESSED  # recorded on a fresh one
