"""Handlers behaving badly, through the real endpoint.

A handler is the project's own code, but code with bugs: it may raise what
no ``except Exception`` catches, build a reply no bot should get, or never
return. Each case checks the documented answer (500 ``handler_error`` or the
deadline's fallback), that the run is recorded with its outcome and error,
and, for the blockers, that another bot's good handler is answered within
its own deadline meanwhile (real threads, the real endpoint).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import Client
from django.urls import reverse

from handlers import WebhookHandler, register
from submissions.dispatch import MAX_ERROR_MESSAGE_CHARS, MAX_TRACEBACK_CHARS
from submissions.models import Bot, HandlerRun, WebhookEvent
from submissions.tokens import sign_token
from tests.factories import BotFactory

pytestmark = pytest.mark.django_db

KINDS = ["def", "async def"]


def make_handler(name: str, kind: str, body: Callable[..., Any], **attrs: Any) -> type:
    """Register a handler ``name`` whose ``handle`` (``def`` or ``async def``) runs ``body``."""
    if kind == "def":

        def handle(self, request, response):
            body(response)

    else:

        async def handle(self, request, response):
            result = body(response)
            if asyncio.iscoroutine(result):
                await result

    cls = type(
        f"Bad_{name.replace('-', '_')}",
        (WebhookHandler,),
        {"name": name, "handle": handle, **attrs},
    )
    return register(cls)


def assert_failed(response, *, error_type: str, message: str = "") -> HandlerRun:
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == "handler_error"
    event = WebhookEvent.objects.get(pk=response["X-Webhook-Event-Id"])
    assert event.status == WebhookEvent.Status.FAILED
    assert event.error_code == "handler_error"
    assert event.response_status == 500
    assert event.response_body == body
    assert event.submission.answers.count() == 1  # the answers are kept
    run = event.runs.get()
    assert run.outcome == HandlerRun.Outcome.FAILED
    assert run.error_type == error_type
    assert run.reply is None
    assert message in run.message
    assert error_type.rpartition(".")[2] in run.traceback
    return run


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class Custom(BaseException):
    pass


RAISES = [
    pytest.param(lambda: SystemExit(3), "builtins.SystemExit", "3", id="SystemExit"),
    pytest.param(
        lambda: KeyboardInterrupt(), "builtins.KeyboardInterrupt", "", id="Ctrl-C"
    ),
    pytest.param(
        lambda: GeneratorExit("bye"), "builtins.GeneratorExit", "bye", id="GenExit"
    ),
    pytest.param(
        lambda: asyncio.CancelledError("mine"),
        "asyncio.exceptions.CancelledError",
        "mine",
        id="CancelledError",
    ),
    pytest.param(lambda: Custom("odd"), f"{__name__}.Custom", "odd", id="custom"),
    pytest.param(
        lambda: Unprintable(), f"{__name__}.Unprintable", "__str__ raised", id="__str__"
    ),
    pytest.param(
        lambda: RecursionError("deep"), "builtins.RecursionError", "deep", id="Rec"
    ),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("exc", "error_type", "message"), RAISES)
def test_a_handler_raising_any_base_exception_is_a_handler_error(
    deliver, handler_registry, kind, exc, error_type, message
):
    def body(response):
        raise exc()

    make_handler("raises", kind, body)

    response = deliver({"handler": "raises", "formValues": {"q": "a"}})

    assert_failed(response, error_type=error_type, message=message)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "exc", [SystemExit, KeyboardInterrupt, GeneratorExit], ids=lambda e: e.__name__
)
def test_in_handler_threads_a_base_exception_is_recorded_and_the_pool_lives_on(
    deliver, handler_registry, settings, kind, exc
):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "HANDLER_THREADS": 2}

    def body(response):
        raise exc()

    make_handler("raises", kind, body)
    make_handler("fine", kind, lambda response: response.add_text("fine"))

    for _ in range(5):  # more than the pool's threads (2, or 4 if made earlier)
        response = deliver({"handler": "raises", "formValues": {"q": "a"}})
        assert_failed(response, error_type=f"builtins.{exc.__name__}")
    response = deliver({"handler": "fine"})

    assert response.status_code == 200
    assert response.json()["blocks"] == [{"type": "text", "text": "fine"}]


def test_a_huge_exception_message_is_recorded_cut(deliver, handler_registry):
    def body(response):
        raise ValueError("x" * 10_000_000)

    make_handler("loud", "def", body)

    response = deliver({"handler": "loud", "formValues": {"q": "a"}})

    run = assert_failed(response, error_type="builtins.ValueError")
    assert len(run.message) < MAX_ERROR_MESSAGE_CHARS + 100
    assert "characters cut" in run.message
    assert len(run.traceback) < MAX_TRACEBACK_CHARS + 100
    event = run.event
    assert len(event.error_detail) < MAX_ERROR_MESSAGE_CHARS + 200
    assert len(event.traceback) < MAX_TRACEBACK_CHARS + 100
    assert len(response.content) < 1000


class Thing:
    pass


def circular() -> dict:
    loop: dict[str, Any] = {"name": "loop"}
    loop["self"] = loop
    return loop


def deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


BAD_VARIABLES = [
    pytest.param({1, 2}, "not JSON-serialisable", id="set"),
    pytest.param(Thing(), "not JSON-serialisable", id="object"),
    pytest.param(datetime.datetime(2026, 1, 1), "not JSON-serialisable", id="datetime"),
    pytest.param(math.nan, "not JSON-serialisable", id="NaN"),
    pytest.param({"x": [math.inf]}, "not JSON-serialisable", id="inf"),
    pytest.param(circular(), "circular", id="circular"),
    pytest.param({("a", "b"): 1}, "not JSON-serialisable", id="tuple-key"),
    pytest.param(b"bytes", "not JSON-serialisable", id="bytes"),
    pytest.param(10**5000, "not JSON-serialisable", id="huge-int"),
    pytest.param(deep(100_000), "nested deeper than 64", id="deep"),
    pytest.param("\ud800", "not UTF-8", id="lone-surrogate"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("value", "message"), BAD_VARIABLES)
def test_a_variable_that_is_not_json_is_a_handler_error(
    deliver, handler_registry, kind, value, message
):
    make_handler("bad-var", kind, lambda response: response.set_variable("v", value))

    response = deliver({"handler": "bad-var", "formValues": {"q": "a"}})

    run = assert_failed(
        response, error_type="handlers.exceptions.InvalidReply", message=message
    )
    assert len(run.message) < 1000


def test_shared_parts_are_not_circular_and_cannot_make_the_check_long(
    deliver, handler_registry
):
    part = ["x"]
    make_handler("shared", "def", lambda r: r.set_variable("v", {"a": part, "b": part}))
    assert deliver({"handler": "shared"}).json()["variables"] == {
        "v": {"a": ["x"], "b": ["x"]}
    }

    wide: list = ["x"]
    for _ in range(60):  # 2**60 paths through 60 lists
        wide = [wide, wide]
    make_handler("wide", "def", lambda r: r.set_variable("v", wide))
    response = deliver({"handler": "wide", "formValues": {"q": "a"}})
    assert_failed(
        response, error_type="handlers.exceptions.InvalidReply", message="cap"
    )


TEN_MB = 10 * 1024 * 1024

BIG_REPLIES = [
    pytest.param(lambda r: r.add_text("x" * TEN_MB), id="text"),
    pytest.param(lambda r: r.set_variable("blob", "y" * TEN_MB), id="variable"),
    pytest.param(lambda r: r.set_variable("list", list(range(2_000_000))), id="list"),
    pytest.param(
        lambda r: [r.add_text("z" * 100) for _ in range(100_000)], id="many-items"
    ),
    pytest.param(lambda r: r.add_image("https://x/" + "é" * TEN_MB), id="image"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("build", BIG_REPLIES)
def test_a_reply_over_the_cap_is_a_handler_error_and_nothing_big_is_kept(
    deliver, handler_registry, kind, build
):
    make_handler("big", kind, build)

    response = deliver({"handler": "big", "formValues": {"q": "a"}})

    run = assert_failed(
        response,
        error_type="handlers.exceptions.InvalidReply",
        message="-byte cap (WEBHOOK_MAX_REPLY_BYTES)",
    )
    assert len(response.content) < 1000
    assert len(run.message) < 1000
    assert len(json.dumps(run.event.response_body)) < 1000


def test_the_reply_cap_is_a_setting_and_a_reply_at_it_is_sent(
    deliver, handler_registry, settings
):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "MAX_REPLY_BYTES": 100}
    # {"blocks":[{"type":"text","text":"..."}],"variables":{}} is 53 bytes + text
    make_handler("edge", "def", lambda r: r.add_text("a" * 47))
    make_handler("over", "def", lambda r: r.add_text("a" * 48))

    sent = deliver({"handler": "edge"})
    refused = deliver({"handler": "over", "formValues": {"q": "a"}})

    assert sent.status_code == 200
    assert len(json.dumps(sent.json(), separators=(",", ":"))) == 100
    assert_failed(refused, error_type="handlers.exceptions.InvalidReply", message="101")


# -- handlers that never return ---------------------------------------------------


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of the test: what "never" returns waits on it, so no thread leaks."""
    event = threading.Event()
    yield event
    event.set()


def wait_for_late_record(event_id: int, timeout: float = 15) -> HandlerRun:
    deadline = time.monotonic() + timeout
    while True:
        run = HandlerRun.objects.get(event_id=event_id)
        if "late" in run.message:
            return run
        assert time.monotonic() < deadline, run.message
        time.sleep(0.1)


def never_returning(kind: str, release: threading.Event) -> Callable[..., Any]:
    """A body that returns only once the test releases it, in each bad way."""

    def blocks_thread(response):
        while not release.is_set():
            time.sleep(0.05)

    async def ignores_cancellation(response):
        while not release.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue

    async def awaits_forever(response):
        await asyncio.Event().wait()

    async def blocks_the_loop_then_awaits(response):
        blocks_thread(response)
        await asyncio.sleep(0.05)  # the loop runs again: the deadline's cancel lands

    async def blocks_its_sync_thread(response):
        await sync_to_async(blocks_thread)(response)

    return {
        "def": blocks_thread,
        "async, blocking the loop": blocks_thread,  # time.sleep in async def
        "async, blocking the loop, then awaiting": blocks_the_loop_then_awaits,
        "async, ignoring cancellation": ignores_cancellation,
        "async, awaiting forever": awaits_forever,
        "async, blocking its sync_to_async thread": blocks_its_sync_thread,
    }[kind]


NEVER = [
    "def",
    "async, blocking the loop",
    "async, blocking the loop, then awaiting",
    "async, ignoring cancellation",
    "async, awaiting forever",
    "async, blocking its sync_to_async thread",
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("never", NEVER)
def test_a_handler_that_never_returns_gets_the_fallback_at_its_deadline(
    deliver, handler_registry, settings, release, never
):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "HANDLER_THREADS": 4}
    kind = "def" if never == "def" else "async def"
    make_handler("never", kind, never_returning(never, release), deadline_seconds=0.5)

    started = time.monotonic()
    response = deliver({"handler": "never", "formValues": {"q": "a"}})
    waited = time.monotonic() - started

    assert waited < 2.5  # the 0.5 s deadline, not "never"
    assert response.status_code == 200
    fallback = settings.WEBHOOKS["HANDLER_FALLBACK_TEXT"]
    assert response.json() == {
        "blocks": [{"type": "text", "text": fallback}],
        "variables": {},
    }
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.FAILED
    assert event.error_code == "handler_timeout"
    run = event.runs.get()
    assert run.outcome == HandlerRun.Outcome.TIMED_OUT
    assert "did not finish within 0.5 s" in run.message
    if never in ("async, awaiting forever", "async, blocking its sync_to_async thread"):
        return  # cancelled at the deadline: nothing runs on to be recorded
    release.set()
    late = wait_for_late_record(event.pk)
    assert late.outcome == HandlerRun.Outcome.TIMED_OUT
    if never == "async, blocking the loop, then awaiting":
        assert "blocked its event loop" in late.message
        assert late.error_type == "handlers.running.TimedOut"
    else:  # it returned, late
        assert late.message.startswith("The handler finished late")


def deliver_in_thread(bot: Bot, payload: dict) -> dict[str, Any]:
    """POST from a thread of its own; the result dict fills in when it is answered."""
    body = json.dumps(payload).encode()
    token = sign_token(bot.secret, body=body)
    result: dict[str, Any] = {}

    def post() -> None:
        try:
            response = Client().post(
                reverse("webhook", args=[bot.slug]),
                data=body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )
            result["status"] = response.status_code
            result["body"] = response.json()
        finally:
            connection.close()

    thread = threading.Thread(target=post)
    thread.start()
    result["thread"] = thread
    return result


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("never", NEVER)
@pytest.mark.parametrize("good_kind", KINDS)
def test_while_a_handler_blocks_another_bots_handler_answers_within_its_deadline(
    handler_registry, settings, release, never, good_kind
):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "HANDLER_THREADS": 4}
    blocking = threading.Event()
    block = never_returning(never, release)

    def bad(response):
        blocking.set()
        return block(response)

    kind = "def" if never == "def" else "async def"
    make_handler("hog", kind, bad, deadline_seconds=4)

    if good_kind == "def":

        def good(response):
            response.add_text(f"{Bot.objects.count()} bots")

    else:

        async def good(response):  # the ORM's async API, as docs/handlers.md says
            response.add_text(f"{await Bot.objects.acount()} bots")

    make_handler("good", good_kind, good, deadline_seconds=2)
    hog_bot, other_bot = BotFactory(slug="hog"), BotFactory(slug="other")

    hog = deliver_in_thread(hog_bot, {"handler": "hog", "formValues": {"q": "a"}})
    assert blocking.wait(10)
    started = time.monotonic()
    other = deliver_in_thread(other_bot, {"handler": "good"})
    other["thread"].join(10)
    answered_in = time.monotonic() - started

    assert other["status"] == 200
    assert other["body"]["blocks"] == [{"type": "text", "text": "2 bots"}]
    assert answered_in < 2  # within its own deadline: its real reply, no fallback
    assert hog["thread"].is_alive()  # the hog is still blocking meanwhile
    release.set()
    hog["thread"].join(15)
    assert hog["status"] in (200, 500)
    assert WebhookEvent.objects.get(bot=other_bot).status == "processed"


# -- the real server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_gunicorn(tmp_path_factory) -> Iterator[Any]:
    """gunicorn (one worker, threads) on a SQLite file, with the ``bad_handlers`` app."""
    import subprocess
    import sys

    from tests.submissions.test_embedded_servers import (
        Server,
        _prepare_database,
        _wait_until_up,
    )
    from tests.webhookproject.test_serving import ROOT, free_port

    folder = tmp_path_factory.mktemp("bad-gunicorn")
    database = folder / "db.sqlite3"
    env, secret = _prepare_database(database)
    port = free_port()
    env |= {
        "DJANGO_SETTINGS_MODULE": "tests.submissions.bad_handlers.settings",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "4",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_STATICFILES_STORAGE": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
        ),
    }
    log = folder / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_up(port, process, log)
        yield Server(port=port, secret=secret, database=database), log
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize(
    "handler", ["exits", "exits-async", "interrupts", "interrupts-async"]
)
def test_under_gunicorn_systemexit_and_ctrl_c_from_a_handler_leave_the_worker_alive(
    bad_gunicorn, handler
):
    from tests.submissions.test_embedded_servers import post

    server, log = bad_gunicorn

    def pid() -> int:
        status, _, body = post(server, json.dumps({"handler": "pid"}).encode())
        assert status == 200
        return json.loads(body)["variables"]["pid"]

    before = pid()
    status, headers, body = post(
        server, json.dumps({"handler": handler, "formValues": {"q": "a"}}).encode()
    )

    assert status == 500, log.read_text()[-2000:]
    assert json.loads(body)["error"] == "handler_error"
    assert pid() == before  # the same worker answered: it did not die
    event_id = int(headers["X-Webhook-Event-Id"])
    assert server.rows(
        "SELECT e.status, r.outcome, r.error_type FROM submissions_webhookevent e "
        "JOIN submissions_handlerrun r ON r.event_id = e.id WHERE e.id = ?",
        (event_id,),
    ) == [
        (
            "failed",
            "failed",
            "builtins.SystemExit"
            if handler.startswith("exits")
            else "builtins.KeyboardInterrupt",
        )
    ]
    assert "Booting worker" in log.read_text()
    assert log.read_text().count("Booting worker") == 1  # never replaced


@pytest.mark.parametrize("cap", [0, -1, "256k"])
def test_a_reply_cap_that_is_not_a_positive_integer_is_refused_at_startup(
    settings, cap
):
    from django.core.checks import run_checks

    settings.WEBHOOKS = {**settings.WEBHOOKS, "MAX_REPLY_BYTES": cap}

    errors = [e for e in run_checks() if e.id == "submissions.E003"]
    assert any("MAX_REPLY_BYTES" in e.msg for e in errors)
