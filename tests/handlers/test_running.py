"""handlers.running.call_within: when a method counts as waiting."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from handlers.running import WAIT_GRACE_SECONDS, Finished, TimedOut, call_within


@pytest.fixture
def executor():
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


def test_a_def_method_done_within_the_grace_is_never_waiting(executor):
    calls = []
    result = call_within(
        lambda: None, deadline=5, executor=executor, on_wait=lambda: calls.append(1)
    )
    assert result == Finished()
    assert calls == []


def test_a_def_method_that_waits_is_reported_once_and_still_finishes(executor):
    calls = []

    def slow():
        time.sleep(WAIT_GRACE_SECONDS * 5)

    result = call_within(
        slow, deadline=5, executor=executor, on_wait=lambda: calls.append(1)
    )
    assert result == Finished()
    assert calls == [1]


def test_the_deadline_counts_the_grace(executor):
    calls = []
    started = time.monotonic()
    result = call_within(
        time.sleep,
        1.0,
        deadline=0.2,
        executor=executor,
        on_wait=lambda: calls.append(1),
    )
    assert isinstance(result, TimedOut)
    assert calls == [1]
    assert time.monotonic() - started < 0.5


def test_an_async_method_is_waiting_before_it_starts():
    order = []

    async def handle():
        order.append("ran")
        await asyncio.sleep(0)

    result = call_within(
        handle, deadline=5, executor=None, on_wait=lambda: order.append("waiting")
    )
    assert result == Finished()
    assert order == ["waiting", "ran"]
