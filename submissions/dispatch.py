"""Running a handler for a stored event: on delivery, and again on replay.

``handler_run_execute`` finds the handler registered under the event's
handler name, runs it inside a transaction (its writes roll back if it
raises), records a ``HandlerRun`` and updates the event's status to match
the run. It never raises for what a handler does, and it decides no HTTP:
it returns what the run came to (``RunOutcome``), and on delivery the
intake's ``respond`` turns that into the reply the event records as sent.
``webhook_events_replay`` runs many stored events again, for the admin and
the ``replay_events`` command alike.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import OperationalError, connections, transaction
from django.db.models import Max, Q
from django.utils import timezone

from handlers import (
    HandlerNotFound,
    InvalidReply,
    ResponseBuilder,
    WebhookRequest,
    registry,
)
from handlers.running import Finished, TimedOut, call_within
from handlers.wire import Delivery, handler_request, parse_delivery, render_reply
from submissions.conf import webhook_settings
from submissions.followups import follow_up_enqueue
from submissions.models import HandlerRun, WebhookEvent
from submissions.services.runs import (
    handler_run_create,
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
#: Events that can be run again. Rejected ones never parsed; replay a duplicate's original.
REPLAYABLE = [
    WebhookEvent.Status.RECEIVED,
    WebhookEvent.Status.PROCESSED,
    WebhookEvent.Status.FAILED,
    WebhookEvent.Status.UNROUTED,
]


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


#: Turns an outcome into (HTTP status, reply body): ``intake.run_reply``.
Respond = Callable[[RunOutcome], tuple[int, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class RunResult:
    run: HandlerRun
    outcome: RunOutcome
    #: The reply recorded as sent, when the run answered a delivery.
    response: tuple[int, dict[str, Any]] | None = None


def handler_run_execute(
    *,
    event: WebhookEvent,
    delivery: Delivery,
    trigger: str = HandlerRun.Trigger.DELIVERY,
    attempt: int = 1,
    respond: Respond | None = None,
    response_duration_from: float | None = None,
) -> RunResult:
    """Run the event's handler once; see the module docstring.

    The handler runs outside any transaction, within its deadline
    (``handlers.running``); its ``HandlerRun`` and the event's new status are
    then committed together in one short transaction, so a process killed
    mid-run leaves the event ``received``, to be taken over (the handler's
    own writes are its own: it commits them, and should be idempotent).

    ``respond`` and ``response_duration_from`` (a ``perf_counter`` value) are
    given on delivery: the reply ``respond`` makes of the outcome is then
    recorded on the event, in the same transaction, as what the bot was sent.
    """
    started_at, started = timezone.now(), time.perf_counter()
    record = functools.partial(
        _run_record,
        event=event,
        attempt=attempt,
        trigger=trigger,
        started_at=started_at,
        started=started,
        respond=respond,
        response_duration_from=response_duration_from,
    )
    try:
        handler_class = registry.get(delivery.handler_name)
    except HandlerNotFound as exc:
        return record(
            RunOutcome(event, HandlerRun.Outcome.UNROUTED, message=str(exc)),
            error={"error_type": "handlers.HandlerNotFound", "message": str(exc)},
        )

    conf = webhook_settings()
    deadline = _deadline_seconds(handler_class)
    response = ResponseBuilder()
    result = call_within(
        handler_class().handle,
        _handler_request(event, delivery),
        response,
        deadline=deadline,
        executor=_executor(),
        on_wait=_pooled_connections_release,
    )
    if isinstance(result, TimedOut):
        fallback = ResponseBuilder().add_text(
            handler_class.fallback_text or conf.handler_fallback_text
        )
        message = (
            f"The handler did not finish within {deadline:g} s; the fallback reply "
            "was sent."
        )
        timed_out = record(
            RunOutcome(
                event,
                HandlerRun.Outcome.TIMED_OUT,
                reply=render_reply(fallback),
                message=message,
            ),
            error={"message": message},
        )
        if result.late is not None:  # a `def` handler runs on: record its end
            result.late.add_done_callback(
                functools.partial(
                    _record_late,
                    run_id=timed_out.run.pk,
                    response=response,
                    started=started,
                    caller=threading.get_ident(),
                )
            )
        return timed_out
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
        return record(
            RunOutcome(
                event,
                HandlerRun.Outcome.FAILED,
                message=f"{error['error_type']}: {error['message']}",
            ),
            error=error,
        )
    succeeded = RunOutcome(event, HandlerRun.Outcome.SUCCEEDED, reply=reply)
    if not handler_class.has_follow_up():
        return record(succeeded)
    with transaction.atomic():  # the follow-up is queued only with the run
        follow_up_enqueue(event=event)
        return record(succeeded)


def _deadline_seconds(handler_class: type[Any] | None) -> float:
    """The handler's own deadline, or the project's."""
    own = getattr(handler_class, "deadline_seconds", None)
    return own or webhook_settings().handler_deadline_seconds


#: A copy waiting for its original's reply reads it again after these pauses
#: (seconds), the last repeated until the wait ends.
REPLY_POLL_PAUSES = (0.02, 0.05, 0.1, 0.2)
#: Beyond the handler's deadline, the time an original's run takes to be
#: recorded: a copy waits for that too before it gives up.
RECORD_GRACE_SECONDS = 1.0


def webhook_event_reply_await(
    *, original: WebhookEvent
) -> tuple[int, dict[str, Any]] | None:
    """The reply ``original`` was sent, once its run (in flight elsewhere) records it.

    Read again at short, growing intervals until the original's handler
    deadline has passed since it was received (plus ``RECORD_GRACE_SECONDS``);
    None if it had not answered by then. Between reads the pooled
    connection goes back to the pool and no transaction or lock is held
    (each read is one autocommitted ``SELECT``), so waiting copies cost the
    database nothing but those reads.
    """
    try:
        handler_class = registry.get(original.handler_name)
    except HandlerNotFound:
        handler_class = None
    deadline = _deadline_seconds(handler_class) + RECORD_GRACE_SECONDS
    waited_since = original.received_at or timezone.now()
    remaining = deadline - (timezone.now() - waited_since).total_seconds()
    until = time.monotonic() + min(max(remaining, 0.0), deadline)
    pauses = iter(REPLY_POLL_PAUSES)
    pause = REPLY_POLL_PAUSES[0]
    while True:
        row = (
            WebhookEvent.objects.filter(pk=original.pk)
            .values_list("response_status", "response_body")
            .first()
        )
        if row is not None and row[0] is not None:
            return row[0], row[1]
        now = time.monotonic()
        if now >= until:
            return None
        _pooled_connections_release()
        time.sleep(min(pause, until - now))
        pause = next(pauses, pause)


def _pooled_connections_release() -> None:
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


#: Pauses before trying a late record again; it is written by a handler
#: thread while requests write too (None: give up and log).
LATE_RECORD_RETRIES = (0.1, 0.3, 1.0, None)


def _run_record(
    outcome: RunOutcome,
    *,
    event: WebhookEvent,
    attempt: int,
    trigger: str,
    started_at: datetime,
    started: float,
    respond: Respond | None,
    response_duration_from: float | None,
    error: dict[str, str] | None = None,
) -> RunResult:
    """The run's ``HandlerRun`` and the event's status, written together."""
    error = error or {}
    run = handler_run_create(
        event=event,
        attempt=attempt,
        trigger=trigger,
        started_at=started_at,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        outcome=outcome.outcome,
        reply=outcome.reply,
        save=False,
        **error,
    )
    finish: dict[str, Any] = {}
    response = None
    if respond is not None:
        response = respond(outcome)
        finish = {
            "response_status": response[0],
            "response_body": response[1],
            "duration_ms": round(
                (time.perf_counter() - (response_duration_from or started)) * 1000, 3
            ),
        }
    handler_run_record(
        event=event,
        run=run,
        status=EVENT_STATUS[outcome.outcome],
        error_code=outcome.error_code,
        error_detail=outcome.message,
        traceback=error.get("traceback", ""),
        **finish,
    )
    return RunResult(run=run, outcome=outcome, response=response)


def handler_run_take_over(
    *,
    original: WebhookEvent,
    delivery: Delivery,
    respond: Respond,
    response_duration_from: float,
) -> RunResult | None:
    """Run an original whose process died before it answered; None if it may be alive.

    An original still ``received`` with no reply after ``IN_FLIGHT_LEASE_SECONDS``
    (longer than the server's request timeout) was abandoned: its run never
    committed. One copy claims it with a conditional UPDATE of ``claimed_at``
    (committed at once, so no lock is held while the handler runs); a
    concurrent copy's UPDATE then matches nothing, and it gets 409. A claim
    is a new lease: if the claiming process dies too, a copy after it takes
    over again.
    """
    lease = timedelta(seconds=webhook_settings().in_flight_lease_seconds)
    now = timezone.now()
    expired = now - lease
    claimed = (  # one autocommitted UPDATE: committed before the handler runs
        WebhookEvent.objects.filter(
            pk=original.pk,
            status=WebhookEvent.Status.RECEIVED,
            response_status__isnull=True,
        )
        .filter(
            Q(claimed_at__isnull=True, received_at__lte=expired)
            | Q(claimed_at__lte=expired)
        )
        .update(claimed_at=now)
    )
    if not claimed:
        return None
    event = WebhookEvent.objects.select_related("bot").get(pk=original.pk)
    logger.warning(
        "taking over event %s, abandoned in flight",
        event.pk,
        extra={"event_id": event.pk},
    )
    return handler_run_execute(
        event=event,
        delivery=delivery,
        respond=respond,
        response_duration_from=response_duration_from,
    )


def _handler_request(event: WebhookEvent, delivery: Delivery) -> WebhookRequest:
    return handler_request(
        delivery, payload=event.payload or {}, bot=event.bot, event_id=event.pk
    )


def webhook_event_replay(*, event: WebhookEvent) -> HandlerRun:
    """Run a stored event through today's handler code; adds a run, never a submission."""
    if event.status not in REPLAYABLE:
        raise ValueError(
            f"Event {event.pk} is {event.status!r}; only {', '.join(REPLAYABLE)} events can be replayed."
        )
    delivery = parse_delivery(event.payload or {}, headers=event.headers or {})
    delivery = dataclasses.replace(delivery, delivery_id=event.delivery_id)
    last = event.runs.aggregate(last=Max("attempt"))["last"] or 0
    result = handler_run_execute(
        event=event,
        delivery=delivery,
        trigger=HandlerRun.Trigger.REPLAY,
        attempt=last + 1,
    )
    return result.run


def webhook_events_replay(
    *, events: Iterable[WebhookEvent]
) -> Iterator[tuple[str, HandlerRun]]:
    """Replay ``events`` one by one, in the order given.

    Yields each event's status before the replay and the new run. Events
    that cannot be replayed (rejected, duplicates) are skipped: the caller
    counts what it gave against what came back.
    """
    for event in events:
        if event.status in REPLAYABLE:
            before = event.status
            yield before, webhook_event_replay(event=event)
