"""Monthly partitions at size: converting to them, and dropping a month vs deleting it.

    .venv/bin/python bench/partitions.py [--events 1000000]

Two databases of its own (names with ``bench``), each migrated to
``submissions 0013`` (plain tables) and filled by SQL (``INSERT ... SELECT
generate_series``) with the same rows: ``--events`` events spread evenly over
the twelve whole months before the current one (from each month's second day
on), each with a submission of five answers and a handler run.

(a) On the first, ``manage.py migrate submissions 0014`` (the conversion to
partitions, ``services.partitions.partitions_convert``) is timed (one
process: Django's start-up included, measured apart as a ``manage.py``
that does next to nothing), and reported per million events.

(b) The oldest month (about N/12 events) goes: on the partitioned database
by ``manage.py purge_events --older-than DAYS --include-submissions``
(DAYS chosen so the cut falls on the next month's first day, before any of
its rows: the month is dropped whole, nothing deleted row-wise), on the plain
one by a batched DELETE as ``services.storage.delete_in_batches`` does it
(5,000 events a batch, oldest ids first, each batch one transaction: their
answers, submissions, runs, then the events). Reports each one's time and
the four tables' size after (``pg_total_relation_size``, indexes and TOAST
included, summed over partitions), with no VACUUM: what the disk holds.

The admin pages and the export (``bench/admin_pages.py``, ``bench/export.py``)
seed and name their own databases and take no database URL, so they are not
rerun here. Writes ``bench/results/partitions.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BenchError,
    database_recreate,
    database_url,
    manage,
    say,
    write_results,
)

PARTITIONED = "webhooks_bench_partitions"
PLAIN = "webhooks_bench_partitions_plain"
TABLES = [
    "submissions_formanswer",
    "submissions_formsubmission",
    "submissions_handlerrun",
    "submissions_webhookevent",
]
BATCH = 5_000
ANSWERS = 5


def month_start(moment: datetime, months_back: int = 0) -> datetime:
    index = moment.year * 12 + moment.month - 1 - months_back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def fill_sql(events: int, first_month: datetime) -> list[str]:
    """The rows, by SQL: event g falls in month (g-1) % 12, days 2 to 28 of it.

    Built from this module's constants and integers only, never from input.
    """
    per_month = -(-events // 12)
    when = (
        f"(TIMESTAMPTZ '{first_month.isoformat()}' + ((g - 1) % 12) * INTERVAL '1 month'"
        f" + INTERVAL '1 day' + ((g - 1) / 12) * (INTERVAL '26 days' / {per_month}))"
    )
    return [
        "INSERT INTO submissions_bot (id, name, slug, secret, previous_secret, "
        "is_active, created_at, wire_mapping) VALUES (1, 'Bench', 'bench', 's', '', "
        "true, now(), '{}')",
        "INSERT INTO submissions_webhookevent (id, received_at, handler_name, status, "  # noqa: S608
        "error_code, error_detail, traceback, headers, raw_body, body_truncated, "
        "body_size, body_sha256, delivery_id, conversation_id, user_id, bot_id, "
        "erased_by, payload, response_status, response_body, duration_ms) "
        f"SELECT g, {when}, 'feedback', 'processed', '', '', '', "
        '\'{"Content-Type": "application/json"}\', convert_to(\'{"handler": "feedback"}\', \'UTF8\'), '
        "false, 22, md5(g::text) || md5(g::text), 'd-' || g, 'c-' || (g % 997), "
        "'u-' || g, 1, '', jsonb_build_object('handler', 'feedback', 'id', 'd-' || g), "
        f"200, '{{\"blocks\": []}}', 3.5 FROM generate_series(1, {events}) g",
        "INSERT INTO submissions_formsubmission (id, handler_name, conversation_id, "
        "user_id, submitted_at, bot_id, event_id) SELECT id, handler_name, "
        "conversation_id, user_id, received_at, bot_id, id FROM submissions_webhookevent",
        "INSERT INTO submissions_formanswer (id, position, key, label, input_type, "  # noqa: S608
        f"value, value_text, submission_id) SELECT (s.id - 1) * {ANSWERS} + a, a, "
        "'q' || a, 'Question ' || a, 'text', to_jsonb('answer ' || s.id), "
        f"'answer ' || s.id, s.id FROM submissions_formsubmission s, "
        f"generate_series(1, {ANSWERS}) a",
        "INSERT INTO submissions_handlerrun (id, attempt, trigger, handler_name, "
        "started_at, finished_at, duration_ms, outcome, error_type, message, traceback, "
        "event_id) SELECT id, 1, 'delivery', handler_name, received_at, received_at, "
        "3.5, 'succeeded', '', '', '', id FROM submissions_webhookevent",
        *(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
            f"(SELECT MAX(id) FROM {table}))"
            for table in [*TABLES, "submissions_bot"]
        ),
        *(f"ANALYZE {table}" for table in TABLES),
    ]


def connect(name: str):
    import psycopg

    conn = psycopg.connect(f"{database_url(name)}", autocommit=True)
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


def prepare(name: str, events: int, first_month: datetime) -> float:
    url = database_url(name)
    database_recreate(url)
    manage(url, "migrate", "submissions", "0013")
    started = time.perf_counter()
    with connect(name) as conn:
        for statement in fill_sql(events, first_month):
            conn.execute(statement)
    return time.perf_counter() - started


def size_mib(name: str) -> float:
    """The four tables with their indexes and TOAST, summed over partitions."""
    with connect(name) as conn:
        total = sum(
            conn.execute(
                "SELECT CASE WHEN c.relkind = 'p' THEN (SELECT "
                "SUM(pg_total_relation_size(relid)) FROM pg_partition_tree(c.oid)) "
                "ELSE pg_total_relation_size(c.oid) END FROM pg_class c "
                "WHERE c.relname = %s AND c.relkind IN ('r', 'p')",
                [table],
            ).fetchone()[0]
            for table in TABLES
        )
    return round(int(total) / 1024 / 1024, 1)


def count_events(name: str) -> int:
    with connect(name) as conn:
        return conn.execute("SELECT COUNT(*) FROM submissions_webhookevent").fetchone()[
            0
        ]


def delete_batched(name: str, before: datetime) -> tuple[float, int]:
    """The plain tables' purge: 5,000 events a batch, each batch one transaction."""
    deleted = 0
    started = time.perf_counter()
    with connect(name) as conn:
        while True:
            with conn.transaction():
                ids = [
                    row[0]
                    for row in conn.execute(
                        "SELECT id FROM submissions_webhookevent WHERE received_at < %s "
                        "ORDER BY id LIMIT %s",
                        [before, BATCH],
                    )
                ]
                if not ids:
                    break
                conn.execute(
                    "DELETE FROM submissions_formanswer WHERE submission_id IN "
                    "(SELECT id FROM submissions_formsubmission WHERE event_id = ANY(%s))",
                    [ids],
                )
                conn.execute(
                    "DELETE FROM submissions_formsubmission WHERE event_id = ANY(%s)",
                    [ids],
                )
                conn.execute(
                    "DELETE FROM submissions_handlerrun WHERE event_id = ANY(%s)", [ids]
                )
                conn.execute(
                    "DELETE FROM submissions_webhookevent WHERE id = ANY(%s)", [ids]
                )
                deleted += len(ids)
    return time.perf_counter() - started, deleted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    if args.events < 12:
        raise BenchError("--events must be at least 12 (one a month).")
    now = datetime.now(UTC)
    first_month, cut = month_start(now, 12), month_start(now, 11)
    # purge_events' cut is now - DAYS days: at or just after the next month's
    # start, before its first row (each month's rows begin on its second day).
    days = (now - cut).days
    before = cut  # the same rows, by the same cut, on the plain database
    million = args.events / 1_000_000
    rows = args.events * (3 + ANSWERS)
    say(f"{args.events} events ({rows} rows in four tables) over 12 months")

    filled = prepare(PARTITIONED, args.events, first_month)
    prepare(PLAIN, args.events, first_month)
    say(f"filled each database in {filled:.1f} s")
    size_before = size_mib(PARTITIONED)

    started = time.perf_counter()
    manage(database_url(PARTITIONED), "migrate", "submissions", "0014")
    convert_s = time.perf_counter() - started
    say(
        f"(a) migrate 0014: {convert_s:.1f} s, {convert_s / million:.1f} s per "
        f"million events; {size_before} MiB plain, {size_mib(PARTITIONED)} MiB "
        "partitioned"
    )
    manage(database_url(PARTITIONED), "migrate")  # the rest, for today's code

    started = time.perf_counter()
    manage(database_url(PARTITIONED), "showmigrations", "submissions")
    startup_s = time.perf_counter() - started
    say(f"a manage.py process that does next to nothing: {startup_s:.2f} s")
    total = count_events(PARTITIONED)
    started = time.perf_counter()
    manage(
        database_url(PARTITIONED),
        "purge_events",
        "--older-than",
        str(days),
        "--include-submissions",
    )
    drop_s = time.perf_counter() - started
    dropped = total - count_events(PARTITIONED)
    delete_s, deleted = delete_batched(PLAIN, before)
    if dropped != deleted:
        raise BenchError(f"Dropped {dropped} events but deleted {deleted}.")
    drop_size, delete_size = size_mib(PARTITIONED), size_mib(PLAIN)
    say(
        f"(b) one month ({dropped} events): purge_events (drop) {drop_s:.2f} s, "
        f"{drop_size} MiB after; batched DELETE {delete_s:.2f} s, {delete_size} MiB after"
    )
    path = write_results(
        "partitions",
        {
            "command": f"bench/partitions.py --events {args.events}",
            "events": args.events,
            "rows": rows,
            "manage_py_startup_seconds": round(startup_s, 2),
            "conversion": {
                "seconds": round(convert_s, 2),
                "seconds_per_million_events": round(convert_s / million, 2),
                "size_before_mib": size_before,
            },
            "one_month": {
                "events": dropped,
                "drop": {"seconds": round(drop_s, 2), "size_after_mib": drop_size},
                "batched_delete": {
                    "seconds": round(delete_s, 2),
                    "batch": BATCH,
                    "size_after_mib": delete_size,
                },
            },
        },
    )
    say(
        f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
