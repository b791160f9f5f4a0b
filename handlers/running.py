"""Running a handler's method within a deadline, whether it is ``def`` or ``async def``.

``call_within(method, *args, deadline=..., executor=...)`` returns a
``Finished`` (the method returned or raised) or a ``TimedOut``:

- the method runs in ``executor``'s thread, the caller waiting at most
  ``deadline`` seconds, so the caller answers at the deadline whatever the
  method does;
- an ``async def`` method runs there in an event loop of its own; at the
  deadline it is cancelled (``asyncio.timeout``), so the HTTP call it was
  waiting on is abandoned. Its ``sync_to_async`` calls (the ORM's async
  API) run in a thread of its own too, never in asgiref's one thread shared
  by the process: a handler that blocks there delays only itself;
- Python cannot stop a thread, so a ``def`` method past its deadline, or an
  ``async def`` one that blocks its event loop (``time.sleep`` in an
  ``async def``) or ignores its cancellation, keeps running;
  ``TimedOut.late`` is the future that will hold what it came to (the
  dispatcher records it on the run; the bot never gets it). Database
  connections the method opened in its threads are closed when it ends.

Whatever the method raises, every ``BaseException`` included (``SystemExit``,
``KeyboardInterrupt``, ``GeneratorExit``, a ``CancelledError`` of its own),
is its error, returned in ``Finished``: it never unwinds the caller's
thread (a ``SystemExit`` reaching gunicorn's worker loop would end the
worker and every request in it).

A ``def`` method that returns an awaitable (a wrapped coroutine) has it
awaited, never dropped. ``call`` runs a method with no deadline (follow-up
work in the task worker).
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.db import connections

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


@dataclass(frozen=True, slots=True)
class Finished:
    """The method returned (``error`` is None) or raised (``error`` is its exc_info)."""

    error: ExcInfo | None = None


@dataclass(frozen=True, slots=True)
class TimedOut:
    """The deadline passed first. For a ``def`` method, ``late`` completes later."""

    late: Future[Finished | TimedOut] | None = field(default=None)


def is_async(method: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(method)


def _await_if_needed(result: Any) -> None:
    if inspect.isawaitable(result):
        asyncio.run(_awaited(result))


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class _SyncCalls(ThreadPoolExecutor):
    """One async method's thread for its ``sync_to_async`` calls; made on first use."""

    used = False

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="webhook-handler-sync")

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.used = True
        return super().submit(fn, *args, **kwargs)


async def _within(coroutine: Any, deadline: float | None) -> bool:
    """Await ``coroutine``, cancelled after ``deadline`` seconds; True if it was.

    A ``TimeoutError`` the coroutine raises itself, before the deadline, is
    its own error. Its thread-sensitive ``sync_to_async`` calls go to a
    thread of its own (``_SyncCalls``), whose connections are closed and
    which ends once they are done, without this loop waiting for it.
    """
    calls = _SyncCalls()
    try:
        async with ThreadSensitiveContext(executor=calls):
            try:
                async with asyncio.timeout(deadline) as scope:
                    await coroutine
            except TimeoutError:
                if scope.expired():
                    return True
                raise
        return False
    finally:
        if calls.used:
            calls.submit(connections.close_all)
        calls.shutdown(wait=False)


def _run(
    method: Callable[..., Any], args: tuple[Any, ...], deadline: float | None
) -> Finished | TimedOut:
    """Run ``method`` here; an ``async def`` one is cancelled after ``deadline``."""
    try:
        if is_async(method):
            if asyncio.run(_within(method(*args), deadline)):
                return TimedOut()
        else:
            _await_if_needed(method(*args))
    except BaseException:  # noqa: BLE001 - SystemExit from a handler is its bug, recorded
        return Finished(error=sys.exc_info())  # type: ignore[arg-type]
    return Finished()


def _in_thread(
    method: Callable[..., Any], args: tuple[Any, ...], deadline: float | None
) -> Finished | TimedOut:
    """Run ``method`` where it was submitted: its result, and its connections closed."""
    try:
        return _run(method, args, deadline)
    finally:
        connections.close_all()  # this thread's own, never the caller's


#: How long a ``def`` method runs before ``call_within`` takes it to be waiting.
WAIT_GRACE_SECONDS = 0.01
#: How long past its deadline the caller waits for an ``async def`` method's
#: own cancellation to end it, before taking its event loop to be blocked.
CANCEL_GRACE_SECONDS = 0.25


def call_within(
    method: Callable[..., Any],
    *args: Any,
    deadline: float,
    executor: Executor | None,
    on_wait: Callable[[], None] | None = None,
) -> Finished | TimedOut:
    """Run ``method(*args)``, giving up waiting after ``deadline`` seconds.

    With no ``executor``, the method runs in the calling thread: a ``def``
    one to its end (no deadline, but the caller's database connection and
    transaction, what a test wrapped in a transaction needs), an ``async
    def`` one cancelled at the deadline (but a blocked event loop blocks
    the caller).

    ``on_wait`` is called in the calling thread once the method is found
    waiting: when it has not finished after ``WAIT_GRACE_SECONDS``, or, with
    no executor, before an ``async def`` method starts. The dispatcher gives
    its pooled connection back there.
    """
    asynchronous = is_async(method)
    if executor is None:
        if asynchronous and on_wait is not None:
            on_wait()
        return _run(method, args, deadline if asynchronous else None)
    future = executor.submit(
        _in_thread, method, args, deadline if asynchronous else None
    )
    wait = deadline + (CANCEL_GRACE_SECONDS if asynchronous else 0.0)
    try:
        if on_wait is not None and wait > WAIT_GRACE_SECONDS:
            try:
                return future.result(timeout=WAIT_GRACE_SECONDS)
            except FutureTimeout:
                on_wait()
                wait -= WAIT_GRACE_SECONDS
        return future.result(timeout=wait)
    except FutureTimeout:
        return TimedOut(late=future)


def call(method: Callable[..., Any], *args: Any) -> None:
    """Run ``method(*args)`` to the end, ``def`` or ``async def``; it may raise."""
    _await_if_needed(method(*args))
