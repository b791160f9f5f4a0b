"""Monthly partitions on PostgreSQL: the conversion, the months ahead, dropping months.

Events, submissions, answers and handler runs are each ``PARTITION BY RANGE
(received_at)``, one partition per calendar month (UTC), every child row
carrying its event's ``received_at``. Each table also has two open-ended
partitions, so that no row is ever refused or lost whatever its date:

- ``<table>_before``: ``MINVALUE`` up to the first month (rows older than
  every month: an old clock, an import);
- ``<table>_after``: the end of the last month up to ``MAXVALUE`` (rows dated
  past every month made ahead). ``partitions_ensure`` keeps it empty by
  making months ahead, and moves into their months any rows it holds.

Neither is a ``DEFAULT`` partition (a default partition would make every
new month's creation scan it, and forbids ``DETACH ... CONCURRENTLY``).

A table's primary key is ``(id, received_at)`` and its unique constraints
include ``received_at`` (PostgreSQL requires the partition key in them); ids
stay unique, drawn from one sequence per table, and Django keeps ``id`` as
the model's key. The one constraint that cannot include it, one original
per bot and delivery id, is a unique index on each events partition
(``<partition>_delivery_uniq``), and ``storage.PartitionedStorage`` checks
the neighbouring month near a month's edge (docs/postgresql.md).

Nothing here runs on SQLite, whose tables stay plain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connections
from django.utils import timezone

#: The four partitioned tables, parents first (the order rows are copied in,
#: the reverse of the order a month is dropped in).
EVENTS = "submissions_webhookevent"
SUBMISSIONS = "submissions_formsubmission"
ANSWERS = "submissions_formanswer"
RUNS = "submissions_handlerrun"
TABLES = (EVENTS, SUBMISSIONS, ANSWERS, RUNS)

#: Months made ahead of the current one (by ``partitions --ensure`` and the
#: daily task); readiness warns below ``MONTHS_AHEAD_WARN``.
MONTHS_AHEAD = 3
MONTHS_AHEAD_WARN = 2
#: The conversion makes at most this many months back; older rows go to
#: ``<table>_before``.
MONTHS_BACK_MAX = 120

_MONTH_NAME = re.compile(r"_p(\d{4})_(\d{2})$")


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def month_add(month: datetime, months: int) -> datetime:
    index = month.year * 12 + month.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def month_name(table: str, month: datetime) -> str:
    return f"{table}_p{month:%Y_%m}"


@dataclass(frozen=True, slots=True)
class Partition:
    table: str
    name: str
    #: None: MINVALUE (``<table>_before``) or MAXVALUE (``<table>_after``).
    lower: datetime | None
    upper: datetime | None
    rows: int  # the planner's estimate (pg_class.reltuples), -1 if never analysed
    detach_pending: bool = False


def is_partitioned(using: str = "default") -> bool:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [EVENTS])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


_BOUND = re.compile(r"FOR VALUES FROM \((.+)\) TO \((.+)\)")


def _bound(text: str) -> datetime | None:
    text = text.strip()
    if text in ("MINVALUE", "MAXVALUE"):
        return None
    return datetime.fromisoformat(text.strip("'")).astimezone(UTC)


def partitions_list(table: str = EVENTS, *, using: str = "default") -> list[Partition]:
    """``table``'s partitions, oldest first (``_before`` first, ``_after`` last)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples, "
            "i.inhdetachpending "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [table],
        )
        rows = cursor.fetchall()
    parts = []
    for name, bound, tuples, pending in rows:
        match = _BOUND.search(bound)
        if match is None:  # never made by this module: a DEFAULT partition
            raise ValueError(f"{name} is not a range partition ({bound}).")
        parts.append(
            Partition(
                table,
                name,
                _bound(match[1]),
                _bound(match[2]),
                int(tuples),
                bool(pending),
            )
        )
    far_past = datetime.min.replace(tzinfo=UTC)
    return sorted(parts, key=lambda p: p.lower or far_past)


def months_ahead(*, using: str = "default", now: datetime | None = None) -> int:
    """Whole months after the current one that every table has a partition for."""
    current = month_start(now or timezone.now())
    ahead = None
    for table in TABLES:
        months = {
            p.lower for p in partitions_list(table, using=using) if p.upper is not None
        }
        count = 0
        while month_add(current, count + 1) in months:
            count += 1
        ahead = count if ahead is None else min(ahead, count)
    return ahead or 0


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _ts(moment: datetime) -> str:
    return f"'{moment.astimezone(UTC).isoformat()}'"


def _delivery_index(cursor: Any, partition: str) -> None:
    """One original per bot and delivery id, within ``partition`` (events only)."""
    cursor.execute(
        f"CREATE UNIQUE INDEX IF NOT EXISTS {_q(partition + '_delivery_uniq')} "
        f"ON {_q(partition)} (bot_id, delivery_id) "
        "WHERE duplicate_of_id IS NULL AND delivery_id <> ''"
    )


def _create(cursor: Any, table: str, name: str, lower: str, upper: str) -> None:
    cursor.execute(
        f"CREATE TABLE {_q(name)} PARTITION OF {_q(table)} "
        f"FOR VALUES FROM ({lower}) TO ({upper})"
    )
    if table == EVENTS:
        _delivery_index(cursor, name)


def _deferred_checks_now(connection: Any) -> None:
    """Inside a transaction that wrote rows (a test's), run their deferred
    foreign-key checks now: a table with pending checks cannot be dropped."""
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _carve(
    table: str,
    part: Partition,
    months: list[datetime],
    rest: tuple[str, str],
    *,
    using: str,
) -> list[str]:
    """Cut ``months`` out of the open-ended ``part`` (``_before`` or ``_after``).

    It is detached, the months made, ``part`` made again over ``rest``, and
    the rows it held inserted again through the parent, so each lands in its
    partition. One transaction.
    """
    from django.db import transaction

    held = f"{table}_held"
    made = []
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        _deferred_checks_now(connections[using])
        cursor.execute(f"ALTER TABLE {_q(table)} DETACH PARTITION {_q(part.name)}")
        cursor.execute(f"ALTER TABLE {_q(part.name)} RENAME TO {_q(held)}")
        if table == EVENTS:
            cursor.execute(
                f"ALTER INDEX IF EXISTS {_q(part.name + '_delivery_uniq')} "
                f"RENAME TO {_q(held + '_delivery_uniq')}"
            )
        for month in months:
            name = month_name(table, month)
            _create(cursor, table, name, _ts(month), _ts(month_add(month, 1)))
            made.append(name)
        _create(cursor, table, part.name, *rest)
        cursor.execute(f"INSERT INTO {_q(table)} SELECT * FROM {_q(held)}")  # noqa: S608 - our table names
        _deferred_checks_now(connections[using])
        cursor.execute(f"DROP TABLE {_q(held)}")
    return made


def partitions_ensure(
    *,
    months: int = MONTHS_AHEAD,
    since: datetime | None = None,
    using: str = "default",
    now: datetime | None = None,
) -> list[str]:
    """Make every table's partitions up to ``months`` after the current month
    (and, with ``since``, back to ``since``'s month).

    The months ahead are cut from the front of ``<table>_after``, the months
    back from the end of ``<table>_before``; rows either held move into
    their months (``_carve``). One transaction per table and side. Returns
    the partitions made.
    """
    end = month_add(month_start(now or timezone.now()), months + 1)
    made: list[str] = []
    for table in TABLES:
        parts = partitions_list(table, using=using)
        after = parts[-1]
        if after.upper is None and after.lower is not None and after.lower < end:
            wanted = []
            month = after.lower
            while month < end:
                wanted.append(month)
                month = month_add(month, 1)
            made += _carve(table, after, wanted, (_ts(end), "MAXVALUE"), using=using)
        before = parts[0]
        if since is not None and before.lower is None and before.upper is not None:
            first = month_start(since)
            wanted = []
            month = first
            while month < before.upper:
                wanted.append(month)
                month = month_add(month, 1)
            if wanted:
                made += _carve(
                    table, before, wanted, ("MINVALUE", _ts(first)), using=using
                )
    return made


def partition_detach_drop(partition: Partition, *, using: str = "default") -> None:
    """Detach ``partition`` (concurrently, outside a transaction) and drop it.

    ``DETACH ... CONCURRENTLY`` takes only a SHARE UPDATE EXCLUSIVE lock on
    the parent, so deliveries keep being written meanwhile; it cannot run in
    a transaction block, so inside one (a test's) it detaches plainly. A
    detach interrupted earlier is finished first.
    """
    connection = connections[using]
    table, name = _q(partition.table), _q(partition.name)
    _deferred_checks_now(connection)
    with connection.cursor() as cursor:
        if partition.detach_pending:
            cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {name} FINALIZE")
        elif connection.in_atomic_block:
            cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
        else:
            cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {name} CONCURRENTLY")
        cursor.execute(f"DROP TABLE {name}")


def partition_before_extend(
    table: str, upper: datetime, *, using: str = "default"
) -> None:
    """Make ``<table>_before`` end at ``upper``, its dropped months' range now
    free. It is empty then (its rows were older than a dropped month's end
    and were deleted or dropped): dropped and made again."""
    parts = partitions_list(table, using=using)
    before = parts[0]
    if before.lower is not None:
        raise ValueError(f"{table} has no _before partition.")
    connection = connections[using]
    with connection.cursor() as cursor:
        partition_detach_drop(before, using=using)
        _create(cursor, table, before.name, "MINVALUE", _ts(upper))


def partitions_convert(connection: Any, *, now: datetime | None = None) -> None:
    """Rebuild the four plain tables as partitioned ones, every row kept.

    Run by migration 0015 inside its transaction (all or nothing). Each
    table is renamed, its indexes and constraints dropped (the copy reads it
    whole anyway), a partitioned table made in its place with the same
    columns, its months made from the oldest row's to ``MONTHS_AHEAD``
    ahead, the rows copied (children taking their event's ``received_at``
    by a join), then the indexes and constraints made again on the
    partitioned table (unique ones with ``received_at``), the old table
    dropped and the id sequence carried on from the largest id.
    """
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE relname = %s", [EVENTS])
        if cursor.fetchone()[0] == "p":
            return
        cursor.execute(
            f"SELECT LEAST((SELECT MIN(received_at) FROM {EVENTS}), "  # noqa: S608 - constants
            f"(SELECT MIN(submitted_at) FROM {SUBMISSIONS} WHERE event_id IS NULL))"
        )
        oldest = cursor.fetchone()[0] or now
        current = month_start(now)
        first = max(month_start(oldest), month_add(current, -MONTHS_BACK_MAX))
        end = month_add(current, MONTHS_AHEAD + 1)
        # What each child's received_at is copied from: its event's (or, when
        # the event is gone, its own time; answers follow their submission).
        received = {
            EVENTS: ("t.received_at", ""),
            SUBMISSIONS: (
                "COALESCE(p.received_at, t.submitted_at)",
                f"LEFT JOIN {EVENTS}_plain p ON p.id = t.event_id",
            ),
            ANSWERS: (
                "COALESCE(p.received_at, t.received_at)",
                f"LEFT JOIN {SUBMISSIONS} p ON p.id = t.submission_id",
            ),
            RUNS: (
                "COALESCE(p.received_at, t.started_at)",
                f"LEFT JOIN {EVENTS}_plain p ON p.id = t.event_id",
            ),
        }
        rebuilt: list[tuple[str, list[tuple[str, str]], list[str], int]] = []
        for table in TABLES:
            old = f"{table}_plain"
            cursor.execute(f"ALTER TABLE {_q(table)} RENAME TO {_q(old)}")
            cursor.execute(
                "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f')",
                [old],
            )
            constraints = [(n, t, d) for n, t, d in cursor.fetchall()]
            names = [n for n, _, _ in constraints]
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s",
                [old],
            )
            indexes = [(n, d) for n, d in cursor.fetchall() if n not in names]
            for name, _, _ in constraints:
                cursor.execute(f"ALTER TABLE {_q(old)} DROP CONSTRAINT {_q(name)}")
            for name, _ in indexes:
                cursor.execute(f"DROP INDEX {_q(name)}")
            cursor.execute(
                f"CREATE TABLE {_q(table)} (LIKE {_q(old)} INCLUDING DEFAULTS "
                "INCLUDING CONSTRAINTS) PARTITION BY RANGE (received_at)"
            )
            cursor.execute(f"ALTER TABLE {_q(table)} ALTER COLUMN id DROP DEFAULT")
            _create(cursor, table, f"{table}_before", "MINVALUE", _ts(first))
            month = first
            while month < end:
                _create(
                    cursor,
                    table,
                    month_name(table, month),
                    _ts(month),
                    _ts(month_add(month, 1)),
                )
                month = month_add(month, 1)
            _create(cursor, table, f"{table}_after", _ts(end), "MAXVALUE")
            cursor.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = %s ORDER BY ordinal_position",
                [old],
            )
            columns = [c for (c,) in cursor.fetchall()]
            expression, join = received[table]
            selected = ", ".join(
                expression if c == "received_at" else f"t.{_q(c)}" for c in columns
            )
            cursor.execute(
                f"INSERT INTO {_q(table)} ({', '.join(map(_q, columns))}) "  # noqa: S608 - our names
                f"SELECT {selected} FROM {_q(old)} t {join}"
            )
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {_q(old)}")  # noqa: S608
            rebuilt.append(
                (table, constraints, [d for _, d in indexes], cursor.fetchone()[0])
            )
        for table, _, _, _ in rebuilt:
            cursor.execute(f"DROP TABLE {_q(table + '_plain')}")
        for table, constraints, indexes, largest in rebuilt:
            for name, kind, definition in constraints:
                if kind in ("p", "u"):
                    definition = re.sub(
                        r"\((.*)\)", r"(\1, received_at)", definition, count=1
                    )
                cursor.execute(
                    f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(name)} {definition}"
                )
            for definition in indexes:
                if definition.startswith("CREATE UNIQUE INDEX"):
                    continue  # the delivery ids: per partition, made above
                cursor.execute(
                    definition.replace(
                        f" ON public.{table}_plain ", f" ON {_q(table)} "
                    )
                )
            sequence = _q(f"{table}_id_seq")
            cursor.execute(f"CREATE SEQUENCE {sequence} OWNED BY {_q(table)}.id")
            cursor.execute(
                f"ALTER TABLE {_q(table)} ALTER COLUMN id SET DEFAULT nextval('{sequence}')"
            )
            cursor.execute(
                "SELECT setval(%s, %s, %s)", [sequence, max(largest, 1), largest > 0]
            )
