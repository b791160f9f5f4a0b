"""The database's CSV lines chunk after chunk, on one connection or on several.

Each chunk is one query (``export_lines.chunk_lines``), and the database's
work is almost all of an export's time: on one connection, one core of the
database server writes it all while the others wait. With
``WEBHOOK_EXPORT_DATABASE_WORKERS`` above 1, that many threads each read
chunks on a connection of their own, at once, and the lines are still
yielded in order:

- this thread finds where each chunk ends first (the key of the
  ``size``-th submission after the last chunk's end: an index scan that
  writes nothing), and hands the chunk, between two keys, to a worker;
- a chunk between two keys is read whole, however many submissions it has
  by then (one committed since is in it, as it would be with one
  connection); the last is the next ``size`` after the last end, and if
  it is full (late commits), reading goes on from where it ended;
- at most as many chunks are read ahead as there are workers, so memory
  stays that of a few chunks; a worker gives its connection back to the
  pool after each chunk, so a download waiting on a slow client holds
  only its request's own;
- a process reads at most that many chunks at once, however many exports
  it serves (``process_slots``): two downloads share the workers' two
  connections, and the rest of the pool stays the deliveries'.

Inside a transaction (a test, a caller's ``atomic``) other connections
would not see what it wrote, so the chunks are read on its own connection,
one after another.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from django.db import connections
from django.db.models import QuerySet

from submissions.conf import webhook_settings
from submissions.exports import ExportColumn, ExportOptions, csv_lines, header_row
from submissions.models import FormSubmission
from submissions.selectors.export_lines import (
    Key,
    after_key,
    chunk_lines,
    chunk_size_for,
    in_export_order,
)

T = TypeVar("T")


def postgres_csv_lines(
    *,
    submissions: QuerySet[FormSubmission],
    columns: Sequence[ExportColumn],
    options: ExportOptions,
    chunk_size: int | None = None,
    workers: int | None = None,
) -> Iterator[str]:
    """The CSV's lines, the header first, written by PostgreSQL where it is sure.

    Keyset pagination on (submitted_at, id) as ``submission_export_iter``:
    one query per chunk of submissions (``chunk_size_for`` the columns), one
    more for a chunk with lines Python writes; no cursor held open between
    chunks. ``workers`` (``WEBHOOK_EXPORT_DATABASE_WORKERS`` by default)
    connections read chunks at once.
    """
    # Pinned: a worker thread does not see this one's routing (the replica's).
    submissions = submissions.using(submissions.db)
    yield from csv_lines([header_row(columns, options=options)])
    size = chunk_size or chunk_size_for(len(columns))
    if workers is None:
        workers = webhook_settings().export_database_workers
    if workers > 1 and not connections[submissions.db].in_atomic_block:
        yield from _at_once(submissions, columns, options, size, workers)
        return
    after: Key | None = None
    while True:
        lines, after, read = chunk_lines(
            submissions, columns, options, after=after, size=size
        )
        yield from lines
        if read < size:
            return


def chunk_end(
    submissions: QuerySet[FormSubmission], after: Key | None, size: int
) -> Key | None:
    """The key of the ``size``-th submission after ``after``; None: fewer are left."""
    found = list(
        after_key(in_export_order(submissions), after).values_list(
            "submitted_at", "id"
        )[size - 1 : size]
    )
    return found[0] if found else None


def _at_once(
    submissions: QuerySet[FormSubmission],
    columns: Sequence[ExportColumn],
    options: ExportOptions,
    size: int,
    workers: int,
) -> Iterator[str]:
    pending: deque[tuple[Future[tuple[list[str], Key | None, int]], bool]] = deque()
    after: Key | None = None
    ended = False
    crew = _Workers(submissions.db, process_slots(workers))
    try:
        crew.start(workers)
        while True:
            while not ended and len(pending) < workers:
                until = chunk_end(submissions, after, size)
                chunk = {"after": after, "until": until, "size": size}
                job = crew.submit(
                    lambda chunk=chunk: chunk_lines(
                        submissions, columns, options, **chunk
                    )
                )
                pending.append((job, until is None))
                ended, after = until is None, until
            if not pending:
                return
            job, last = pending.popleft()
            lines, end, read = job.result()
            yield from lines
            if last and read >= size:  # full: more were committed meanwhile
                ended, after = False, end
    finally:
        for job, _ in pending:
            job.cancel()
        crew.stop()


class _Workers:
    """Threads that run jobs on their own connections to the database,
    given back to the pool (or closed) after each job, whatever it did."""

    def __init__(self, alias: str, slots: threading.BoundedSemaphore) -> None:
        self.alias = alias
        self.slots = slots
        self.jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None]
        self.jobs = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []

    def start(self, count: int) -> None:
        for n in range(count):
            thread = threading.Thread(
                target=self._work, name=f"export-{n}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def submit(self, job: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self.jobs.put((future, job))
        return future

    def stop(self) -> None:
        """Stop the threads once their jobs in hand are done."""
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()

    def _work(self) -> None:
        while (item := self.jobs.get()) is not None:
            future, job = item
            with self.slots:  # the process's, shared by every export
                if not future.set_running_or_notify_cancel():
                    continue  # cancelled: the download stopped
                try:
                    future.set_result(job())
                except BaseException as error:  # noqa: BLE001 - handed to the reader
                    future.set_exception(error)
                finally:
                    connections.close_all()  # this thread's: back to the pool


_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def process_slots(count: int) -> threading.BoundedSemaphore:
    """At most ``count`` chunks read at once by this process's workers, however
    many exports it serves: its pool keeps the rest for deliveries."""
    with _slots_lock:
        return _slots.setdefault(count, threading.BoundedSemaphore(count))
