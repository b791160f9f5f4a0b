"""Running a handler's method within a deadline, whether it is ``def`` or ``async def``.

``call_within(method, *args, deadline=..., executor=...)`` returns a
``Finished`` (the method returned or raised) or a ``TimedOut``:

- an ``async def`` method runs in an event loop of its own in the calling
  thread; at the deadline it is cancelled (``asyncio.wait_for``), so the
  HTTP call it was waiting on is abandoned;
- a ``def`` method runs in ``executor``'s thread, the caller waiting at most
  ``deadline`` seconds; Python cannot stop a thread, so at the deadline the
  method keeps running, and ``TimedOut.late`` is the future that will hold
  what it came to (the dispatcher records it on the run; the bot never
  gets it). Database connections the method opened in that thread are
  closed when it ends.

A ``def`` method that returns an awaitable (a wrapped coroutine) has it
awaited, never dropped. ``call`` runs a method with no deadline (follow-up
work in the task worker).
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from django.db import connections

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


@dataclass(frozen=True, slots=True)
class Finished:
    """The method returned (``error`` is None) or raised (``error`` is its exc_info)."""

    error: ExcInfo | None = None


@dataclass(frozen=True, slots=True)
class TimedOut:
    """The deadline passed first. For a ``def`` method, ``late`` completes later."""

    late: Future[Finished] | None = field(default=None)


def is_async(method: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(method)


def _await_if_needed(result: Any) -> None:
    if inspect.isawaitable(result):
        asyncio.run(_awaited(result))


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _in_thread(method: Callable[..., Any], args: tuple[Any, ...]) -> Finished:
    """Run ``method`` where it was submitted: its result, and its connections closed."""
    try:
        _await_if_needed(method(*args))
    except Exception:  # noqa: BLE001 - a handler's failure is recorded by the caller
        return Finished(error=sys.exc_info())  # type: ignore[arg-type]
    finally:
        connections.close_all()  # this thread's own, never the caller's
    return Finished()


#: How long a ``def`` method runs before ``call_within`` takes it to be waiting.
WAIT_GRACE_SECONDS = 0.01


def call_within(
    method: Callable[..., Any],
    *args: Any,
    deadline: float,
    executor: Executor | None,
    on_wait: Callable[[], None] | None = None,
) -> Finished | TimedOut:
    """Run ``method(*args)``, giving up waiting after ``deadline`` seconds.

    With no ``executor``, a ``def`` method runs in the calling thread, to its
    end: no deadline, but the caller's database connection and transaction
    (what a test wrapped in a transaction needs).

    ``on_wait`` is called in the calling thread once the method is found
    waiting: a ``def`` method that has not finished after
    ``WAIT_GRACE_SECONDS``, an ``async def`` one before it starts (its event
    loop then runs in the calling thread, where Django's connection can no
    longer be touched). The dispatcher gives its pooled connection back there.
    """
    if is_async(method):
        if on_wait is not None:
            on_wait()
        try:
            asyncio.run(asyncio.wait_for(method(*args), timeout=deadline))
        except TimeoutError:
            return TimedOut()
        except Exception:  # noqa: BLE001 - recorded by the caller
            return Finished(error=sys.exc_info())  # type: ignore[arg-type]
        return Finished()
    if executor is None:
        try:
            _await_if_needed(method(*args))
        except Exception:  # noqa: BLE001 - recorded by the caller
            return Finished(error=sys.exc_info())  # type: ignore[arg-type]
        return Finished()
    future = executor.submit(_in_thread, method, args)
    waited = 0.0
    try:
        if on_wait is not None and deadline > WAIT_GRACE_SECONDS:
            try:
                return future.result(timeout=WAIT_GRACE_SECONDS)
            except FutureTimeout:
                on_wait()
                waited = WAIT_GRACE_SECONDS
        return future.result(timeout=deadline - waited)
    except FutureTimeout:
        return TimedOut(late=future)


def call(method: Callable[..., Any], *args: Any) -> None:
    """Run ``method(*args)`` to the end, ``def`` or ``async def``; it may raise."""
    _await_if_needed(method(*args))
