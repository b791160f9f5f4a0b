"""Running a handler for a stored event, and recording what it came to.

``handler_run_execute`` finds the handler registered under the event's
handler name and runs it within its deadline, outside any transaction. It
never raises for what a handler does, writes nothing and decides no HTTP:
it returns a ``Ran``, the outcome (``RunOutcome``) and the unsaved
``HandlerRun``. The caller records it with ``handler_run_record_ran``: the
intake with the reply the bot was sent (``SentReply``), a replay or a
take-over likewise without or with one. Recording writes the run and the
event's status together, queues the handler's follow-up with them, and,
for a ``def`` handler that ran past its deadline, records its late end.
Copies of a delivery live in ``submissions.copies``, replays in
``submissions.replay``.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import OperationalError, connections, transaction
from django.utils import timezone

from handlers import (
    HandlerNotFound,
    InvalidReply,
    ResponseBuilder,
    WebhookRequest,
    registry,
)
from handlers.running import Finished, TimedOut, call_within
from handlers.wire import Delivery, handler_request, render_reply
from submissions.conf import webhook_settings
from submissions.followups import follow_up_enqueue
from submissions.models import HandlerRun, WebhookEvent
from submissions.services.runs import (
    handler_run_build,
    handler_run_record,
    handler_run_record_late,
)

logger = logging.getLogger("submissions.dispatch")

EVENT_STATUS = {
    HandlerRun.Outcome.SUCCEEDED: WebhookEvent.Status.PROCESSED,
    HandlerRun.Outcome.FAILED: WebhookEvent.Status.FAILED,
    HandlerRun.Outcome.UNROUTED: WebhookEvent.Status.UNROUTED,
    HandlerRun.Outcome.TIMED_OUT: WebhookEvent.Status.FAILED,
}


#: The event's error code for each way a run can fail.
ERROR_CODES = {
    HandlerRun.Outcome.UNROUTED: "unknown_handler",
    HandlerRun.Outcome.FAILED: "handler_error",
    HandlerRun.Outcome.TIMED_OUT: "handler_timeout",
}


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """What a run came to, before anyone decides how to answer it.

    ``reply`` is the handler's rendered reply when it succeeded; ``message``
    says in a sentence why it did not (the registry's "no handler named..."
    with close matches, or the exception's type and text).
    """

    event: WebhookEvent
    outcome: str
    reply: dict[str, Any] | None = None
    message: str = ""

    @property
    def error_code(self) -> str:
        return ERROR_CODES.get(self.outcome, "")


@dataclass(frozen=True, slots=True)
class SentReply:
    """The reply a delivery's bot was sent, recorded on its event."""

    status: int
    body: dict[str, Any]
    duration_ms: float


@dataclass(frozen=True, slots=True)
class Ran:
    """A run that is over but not recorded: what it came to, and its unsaved row."""

    outcome: RunOutcome
    run: HandlerRun
    traceback: str = ""
    #: Queue the handler's follow-up work when the run is recorded.
    follow_up: bool = False
    #: A ``def`` handler that ran on past its deadline: its end, to record.
    late: Future[Any] | None = None
    builder: ResponseBuilder | None = None
    started: float = 0.0


def handler_run_execute(
    *,
    event: WebhookEvent,
    delivery: Delivery,
    trigger: str = HandlerRun.Trigger.DELIVERY,
    attempt: int = 1,
) -> Ran:
    """Run the event's handler once, within its deadline; see the module docstring.

    The handler runs outside any transaction (``handlers.running``), so a
    process killed mid-run leaves the event ``received``, to be taken over
    (the handler's own writes are its own: it commits them, and should be
    idempotent). Nothing is written here.
    """
    started_at, started = timezone.now(), time.perf_counter()
    ran = functools.partial(
        _ran,
        event=event,
        attempt=attempt,
        trigger=trigger,
        started_at=started_at,
        started=started,
    )
    try:
        handler_class = registry.get(delivery.handler_name)
    except HandlerNotFound as exc:
        return ran(
            RunOutcome(event, HandlerRun.Outcome.UNROUTED, message=str(exc)),
            error={"error_type": "handlers.HandlerNotFound", "message": str(exc)},
        )

    conf = webhook_settings()
    deadline = deadline_seconds(handler_class)
    response = ResponseBuilder()
    result = call_within(
        handler_class().handle,
        _handler_request(event, delivery),
        response,
        deadline=deadline,
        executor=_executor(),
        on_wait=pooled_connections_release,
    )
    if isinstance(result, TimedOut):
        fallback = ResponseBuilder().add_text(
            handler_class.fallback_text or conf.handler_fallback_text
        )
        message = (
            f"The handler did not finish within {deadline:g} s; the fallback reply "
            "was sent."
        )
        return ran(
            RunOutcome(
                event,
                HandlerRun.Outcome.TIMED_OUT,
                reply=render_reply(fallback),
                message=message,
            ),
            error={"message": message},
            late=result.late,  # a `def` handler runs on: its end is recorded
            builder=response,
        )
    exc_info = result.error
    if exc_info is None:
        try:
            reply = render_reply(response, max_bytes=conf.max_reply_bytes)
        except InvalidReply:  # not JSON, not UTF-8, too deep or too big: its bug
            exc_info = sys.exc_info()  # type: ignore[assignment]
    if exc_info is not None:
        error = _error(exc_info)
        logger.error(
            "handler %r failed for event %s",
            delivery.handler_name,
            event.pk,
            exc_info=exc_info,
            extra={"event_id": event.pk},
        )
        return ran(
            RunOutcome(
                event,
                HandlerRun.Outcome.FAILED,
                message=f"{error['error_type']}: {error['message']}",
            ),
            error=error,
        )
    return ran(
        RunOutcome(event, HandlerRun.Outcome.SUCCEEDED, reply=reply),
        follow_up=handler_class.has_follow_up(),
    )


def deadline_seconds(handler_class: type[Any] | None) -> float:
    """The handler's own deadline, or the project's."""
    own = getattr(handler_class, "deadline_seconds", None)
    return own or webhook_settings().handler_deadline_seconds


def pooled_connections_release() -> None:
    """Give this thread's pooled connections back while the handler waits.

    With ``DJANGO_DB_POOL`` a request holds its connection until it ends;
    a handler waiting on an API would hold it idle all that time, so a pool
    of a few connections could not serve many waiting handlers. Called by
    ``call_within`` once the handler is found waiting (a handler that is
    done within milliseconds keeps the connection, saving a round trip to
    take it again). Outside a transaction only; the run is then recorded on
    a connection taken afresh. Persistent connections (no pool) stay open,
    idle.
    """
    for conn in connections.all(initialized_only=True):
        if (
            conn.connection is not None
            and not conn.in_atomic_block
            and getattr(conn, "pool", None) is not None
        ):
            conn.close()


_handler_threads: ThreadPoolExecutor | None = None
_handler_threads_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor | None:
    """This process's threads for `def` handlers (``WEBHOOK_HANDLER_THREADS``).

    None when it is 0: `def` handlers then run in the request's own thread
    (no deadline for them; what tests wrapped in a transaction need).
    """
    global _handler_threads  # one pool per process, made on first use
    if webhook_settings().handler_threads == 0:
        return None
    with _handler_threads_lock:
        if _handler_threads is None:
            _handler_threads = ThreadPoolExecutor(
                max_workers=webhook_settings().handler_threads,
                thread_name_prefix="webhook-handler",
            )
        return _handler_threads


#: Longest error message and traceback a run records (a handler's exception
#: may quote a 10 MB value); the middle of a longer one is cut.
MAX_ERROR_MESSAGE_CHARS = 4000
MAX_TRACEBACK_CHARS = 64 * 1024


def _error(exc_info: Any) -> dict[str, str]:
    exc_type, exc, _ = exc_info
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001 - a hostile __str__ must not lose the run
        message = f"<{exc_type.__qualname__}.__str__ raised>"
    return {
        "error_type": f"{exc_type.__module__}.{exc_type.__qualname__}",
        "message": _cut(message, MAX_ERROR_MESSAGE_CHARS),
        "traceback": _cut(
            "".join(traceback.format_exception(*exc_info)), MAX_TRACEBACK_CHARS
        ),
    }


def _cut(text: str, limit: int) -> str:
    """``text``, its middle cut out (and said so) when it is over ``limit``."""
    if len(text) <= limit:
        return text
    keep = limit // 2
    return f"{text[:keep]}\n[... {len(text) - 2 * keep:,} characters cut ...]\n{text[-keep:]}"


#: Pauses before trying a late record again; it is written by a handler
#: thread while requests write too (None: give up and log).
LATE_RECORD_RETRIES = (0.1, 0.3, 1.0, None)


def _record_late(
    future: Future[Finished | TimedOut],
    *,
    run_id: int,
    response: ResponseBuilder,
    started: float,
    caller: int,
) -> None:
    """A timed-out handler ended after all: record what it came to (never sent).

    A ``def`` handler ran on past its deadline; an ``async def`` one blocked
    its event loop or ignored its cancellation (``finished`` is then a
    ``TimedOut``: it was cancelled once its loop ran again).
    """
    finished = future.result()
    seconds = time.perf_counter() - started
    fields: dict[str, Any] = {}
    if isinstance(finished, TimedOut):
        fields["message"] = (
            "It blocked its event loop (or ignored its cancellation) past its "
            "deadline, and was cancelled only then."
        )
        fields["error_type"] = "handlers.running.TimedOut"
    elif finished.error is None:
        try:
            fields["reply"] = render_reply(
                response, max_bytes=webhook_settings().max_reply_bytes
            )
        except InvalidReply:
            fields |= _error(sys.exc_info())
    else:
        fields |= _error(finished.error)
    verb = "finished" if "error_type" not in fields else "failed"
    fields["message"] = (
        f"The handler {verb} late, after {seconds:.1f} s; the fallback reply had "
        "been sent, and this was not."
        + (f" {fields['message']}" if verb == "failed" else "")
    )
    try:
        for pause in LATE_RECORD_RETRIES:
            try:
                handler_run_record_late(run_id=run_id, **fields)
                break
            except OperationalError:  # SQLite busy or locked for a moment
                if pause is None:
                    raise
                time.sleep(pause)
    finally:
        if threading.get_ident() != caller:
            connections.close_all()  # the handler thread's connection


def _ran(
    outcome: RunOutcome,
    *,
    event: WebhookEvent,
    attempt: int,
    trigger: str,
    started_at: datetime,
    started: float,
    error: dict[str, str] | None = None,
    follow_up: bool = False,
    late: Future[Any] | None = None,
    builder: ResponseBuilder | None = None,
) -> Ran:
    error = error or {}
    run = handler_run_build(
        event=event,
        attempt=attempt,
        trigger=trigger,
        started_at=started_at,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        outcome=outcome.outcome,
        reply=outcome.reply,
        error_type=error.get("error_type", ""),
        message=error.get("message", ""),
        traceback=error.get("traceback", ""),
    )
    return Ran(
        outcome=outcome,
        run=run,
        traceback=error.get("traceback", ""),
        follow_up=follow_up,
        late=late,
        builder=builder,
        started=started,
    )


def handler_run_record_ran(*, ran: Ran, sent: SentReply | None = None) -> HandlerRun:
    """Record ``ran``: its ``HandlerRun`` and the event's status, written together.

    ``sent`` is the reply the bot was sent, when the run answered a
    delivery: recorded on the event, in the same write, for its copies. A
    succeeded run whose handler has follow-up work queues it in the same
    transaction (queued only with the run). A ``def`` handler still running
    past its deadline has its end recorded on this run when it comes.
    May raise ``DatabaseError``; then nothing of it was written.
    """
    outcome = ran.outcome
    record = functools.partial(
        handler_run_record,
        event=outcome.event,
        run=ran.run,
        status=EVENT_STATUS[outcome.outcome],
        error_code=outcome.error_code,
        error_detail=outcome.message,
        traceback=ran.traceback,
        response_status=sent.status if sent else None,
        response_body=sent.body if sent else None,
        duration_ms=sent.duration_ms if sent else None,
    )
    if ran.follow_up:
        with transaction.atomic():
            follow_up_enqueue(event=outcome.event)
            run = record()
    else:
        run = record()
    if ran.late is not None and ran.builder is not None:
        ran.late.add_done_callback(
            functools.partial(
                _record_late,
                run_id=run.pk,
                response=ran.builder,
                started=ran.started,
                caller=threading.get_ident(),
            )
        )
    return run


def _handler_request(event: WebhookEvent, delivery: Delivery) -> WebhookRequest:
    return handler_request(
        delivery, payload=event.payload or {}, bot=event.bot, event_id=event.pk
    )
