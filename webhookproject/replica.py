"""Staff reads from a streaming replica (docs/deployment.md "Read replica").

``DATABASE_REPLICA_URL`` adds the database alias ``replica``, this module's
router and its middleware (settings.py). Then:

- a ``GET`` or ``HEAD`` under ``/admin/`` or ``/api/`` (changelists, the
  console, exports, the read API) reads from the replica, unless the caller
  wrote lately (below), a transaction is open on the primary, or the replica
  is unusable;
- everything else reads from the primary: the webhook path, every other
  method, the task worker, management commands, anything inside
  ``transaction.atomic`` (the admin's change form is one). Every write goes
  to the primary, and migrations run only there (``allow_migrate``);
- a request that writes (any other method under ``/admin/`` or ``/api/``:
  saving a bot, erasing, replaying, logging in) gets a signed cookie that
  sends its client's reads to the primary for
  ``DATABASE_REPLICA_PIN_SECONDS``, so a writer sees what it wrote;
- the replica is usable while it answers and its replay lags at most
  ``DATABASE_REPLICA_MAX_LAG_SECONDS``. Each process checks that at most
  every ``DATABASE_REPLICA_CHECK_SECONDS`` and keeps the answer; ``/readyz``
  reports it (``replica_report``). A request whose replica read fails is run
  again on the primary once, and the replica is taken as down until the
  next check.

Reads choose their database through ``reads_from_replica()``, a context
variable the middleware sets per request and ``request_finished`` clears
(after a streamed export has been sent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import request_finished
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

REPLICA = "replica"
#: Where staff read: the admin (with its console pages) and the read API.
READ_PREFIXES = ("/admin/", "/api/")
SAFE_METHODS = frozenset({"GET", "HEAD"})
PIN_COOKIE = "replica_pin"
PIN_SALT = "webhookproject.replica"

#: The replica's replay lag in seconds: 0 when it has replayed everything it
#: received (an idle primary sends nothing, so the last replayed transaction
#: can be old without any lag), else the age of the last replayed
#: transaction. A server that is not in recovery has no lag.
LAG_SQL = """
    SELECT CASE
        WHEN NOT pg_is_in_recovery() THEN 0
        WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
        ELSE COALESCE(
            EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0
        )
    END
"""

_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


ROUTER = "webhookproject.replica.ReplicaRouter"


def configured() -> bool:
    """A ``replica`` alias, routed to by this module (settings.py installs both)."""
    return REPLICA in connections.settings and ROUTER in settings.DATABASE_ROUTERS


def wants_replica() -> bool:
    """Whether the current request's reads are the replica's to serve."""
    return _replica_reads.get()


@contextmanager
def reads_from_replica(enabled: bool = True) -> Iterator[None]:
    """Route this context's reads as a staff ``GET`` is routed (or not)."""
    token = _replica_reads.set(enabled)
    try:
        yield
    finally:
        _replica_reads.reset(token)


@receiver(request_finished)
def _request_finished(**kwargs: Any) -> None:
    # After the response (a streamed export included) has been sent; a
    # worker thread's next request starts on the primary.
    _replica_reads.set(False)


# -- is the replica usable? --------------------------------------------------------


@dataclass(frozen=True)
class ReplicaState:
    reachable: bool
    lag_seconds: float | None
    checked_at: float  # time.monotonic()

    @property
    def usable(self) -> bool:
        return (
            self.reachable
            and self.lag_seconds is not None
            and self.lag_seconds <= settings.DATABASE_REPLICA_MAX_LAG_SECONDS
        )


def measure_lag(alias: str = REPLICA) -> float:
    """The replica's replay lag in seconds (``LAG_SQL``); raises DatabaseError."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute("SELECT 0")  # reachable; no replication to measure
        else:
            cursor.execute(LAG_SQL)
        (lag,) = cursor.fetchone()
    return max(float(lag), 0.0)


class ReplicaHealth:
    """The process's last word on the replica, refreshed at most every
    ``DATABASE_REPLICA_CHECK_SECONDS``. One thread checks; the others keep
    the previous answer meanwhile (the first answer is waited for)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: ReplicaState | None = None

    def reset(self) -> None:
        with self._lock:
            self._state = None

    def state(self) -> ReplicaState:
        state = self._state
        fresh_for = settings.DATABASE_REPLICA_CHECK_SECONDS
        if state is not None and time.monotonic() - state.checked_at < fresh_for:
            return state
        if not self._lock.acquire(blocking=state is None):
            return state  # another thread is checking
        try:
            if self._state is not state:  # checked while we waited
                return self._state
            self._state = self._check(previous=state)
            return self._state
        finally:
            self._lock.release()

    def mark_down(self) -> None:
        with self._lock:
            self._state = ReplicaState(
                reachable=False, lag_seconds=None, checked_at=time.monotonic()
            )
        logger.warning("replica: a read failed; reading from the primary")

    def _check(self, *, previous: ReplicaState | None) -> ReplicaState:
        try:
            lag: float | None = measure_lag()
            reachable = True
        except DatabaseError:
            lag, reachable = None, False
            connections[REPLICA].close()
            if previous is None or previous.reachable:
                logger.warning(
                    "replica: unreachable; reading from the primary", exc_info=True
                )
        state = ReplicaState(
            reachable=reachable, lag_seconds=lag, checked_at=time.monotonic()
        )
        if reachable and not state.usable and (previous is None or previous.usable):
            logger.warning(
                "replica: %.1f s behind (more than %s); reading from the primary",
                lag,
                settings.DATABASE_REPLICA_MAX_LAG_SECONDS,
            )
        return state


health = ReplicaHealth()


def replica_report() -> dict[str, object]:
    """What ``/readyz`` says about the replica (only when one is configured)."""
    state = health.state()
    return {
        "reads": "replica" if state.usable else "primary",
        "reachable": state.reachable,
        "lag_seconds": None
        if state.lag_seconds is None
        else round(state.lag_seconds, 1),
        "max_lag_seconds": settings.DATABASE_REPLICA_MAX_LAG_SECONDS,
    }


# -- the router and the middleware -----------------------------------------------------


class ReplicaRouter:
    """Reads to the replica only for a staff read outside a transaction."""

    def db_for_read(self, model: type, **hints: Any) -> str:
        if (
            wants_replica()
            and not connections[DEFAULT_DB_ALIAS].in_atomic_block
            and health.state().usable
        ):
            return REPLICA
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model: type, **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # Both aliases are the same data: a row read on one relates to the other.
        databases = {DEFAULT_DB_ALIAS, REPLICA}
        if obj1._state.db in databases and obj2._state.db in databases:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS


def _staff_path(request: HttpRequest) -> bool:
    return request.path_info.startswith(READ_PREFIXES)


def pinned(request: HttpRequest) -> bool:
    """Whether this client wrote within ``DATABASE_REPLICA_PIN_SECONDS``."""
    return (
        request.get_signed_cookie(
            PIN_COOKIE,
            default=None,
            salt=PIN_SALT,
            max_age=settings.DATABASE_REPLICA_PIN_SECONDS,
        )
        is not None
    )


class ReplicaReadsMiddleware:
    """Chooses the request's reads, pins a writer to the primary, and runs a
    view again on the primary when its replica read failed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        staff = _staff_path(request)
        safe = request.method in SAFE_METHODS
        _replica_reads.set(staff and safe and not pinned(request))
        response = self.get_response(request)
        if staff and not safe:
            response.set_signed_cookie(
                PIN_COOKIE,
                "1",
                salt=PIN_SALT,
                max_age=settings.DATABASE_REPLICA_PIN_SECONDS,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if (
            not isinstance(exception, DatabaseError)
            or not wants_replica()
            or not connections[REPLICA].errors_occurred
            or getattr(request, "_replica_retried", False)
        ):
            return None
        # A replica that went away between checks: once more, on the primary.
        health.mark_down()
        connections[REPLICA].close()
        request._replica_retried = True  # type: ignore[attr-defined]
        _replica_reads.set(False)
        match = request.resolver_match
        if match is None:
            return None
        response = match.func(request, *match.args, **match.kwargs)
        if callable(getattr(response, "render", None)):
            response = response.render()
        return response
