"""Monthly partitions at size: converting to them, the pages and the export on
them, and dropping a month vs deleting it.

    .venv/bin/python bench/partitions.py [--events 1000000] [--months 12]
        [--pages] [--export [--export-runs 2]] [--no-purge | --reuse]

    # The ten-million-event table of BENCHMARKS.md, in two runs:
    bench/partitions.py --events 10000000 --months 9 --pages --no-purge
    bench/partitions.py --events 10000000 --months 9 --reuse --export

Two databases of its own (names with ``bench``), each migrated to
``submissions 0013`` (plain tables, the last release) and filled by SQL
(``INSERT ... SELECT generate_series``) with the same rows: ``--events``
events spread evenly from the second day of the month ``--months`` before
this one up to now, ids rising with time, over five bots and five handlers,
3 in 100 failed, each with a submission of five answers (name, email,
rating, topics, a comment; ``fill_sql``) and a handler run.

(a) On the first, ``manage.py migrate submissions 0014`` (the conversion to
partitions, ``services.partitions.partitions_convert``) is timed (one
process: Django's start-up included, measured apart as a ``manage.py``
that does next to nothing), and reported per million events; then the
later migrations and a ``VACUUM ANALYZE`` (what autovacuum would do in time).

With ``--pages`` and ``--export``, ``bench/admin_pages.py`` and
``bench/export.py`` run on that database (their ``--database``): the admin
pages, the console and the CSV export of everything, at that size.

(b) The oldest month (about N/months events) goes: on the partitioned database
by ``manage.py purge_events --before <the next month's first day>
--include-submissions`` (the month is dropped whole, nothing deleted
row-wise); then the
plain database is filled (only now: the disk holds two copies, not three)
and the same rows go by a batched DELETE as ``services.storage.delete_in_batches``
does it (5,000 events a batch, oldest ids first, each batch one
transaction: their answers, submissions, runs, then the events). Reports
each one's time and the four tables' size after (``pg_total_relation_size``,
indexes and TOAST included, summed over partitions), with no VACUUM: what
the disk holds.

Writes ``bench/results/partitions.json`` after each step.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    RESULTS,
    ROOT,
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


#: The fill's bots, handlers and answers, alike seed_events' (the admin pages
#: bench/admin_pages.py times filter on them: a bot, "feedback", "signup",
#: "invoice" in a comment, an email address).
BOTS = 5
HANDLERS = ("save-form", "feedback", "signup", "support-request", "crm-push")
FIRST_NAMES = ("Zoe", "Amir", "Lena", "Kofi", "Maria", "Jun", "Olga", "Tom")
WORDS = ("the", "delivery", "arrived", "late", "support", "never", "called", "back")
TOPICS = ("billing", "api", "pricing", "onboarding", "security")


def _array(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


def fill_sql(events: int, start: datetime, end: datetime) -> list[str]:
    """The rows, by SQL: event g at ``start + (g - 1) * (end - start) / events``
    (ids rising with time, as a receiver writes them), 3 in 100 failed, each
    with a submission of five answers (name, email, rating, topics, comment;
    one comment in seven mentions an invoice) and a handler run.

    Built from this module's constants, dates and integers only, never from input.
    """
    step = f"(INTERVAL '{(end - start).total_seconds()} seconds' / {events})"
    when = f"(TIMESTAMPTZ '{start.isoformat()}' + (g - 1) * {step})"
    handler = f"({_array(HANDLERS)})[1 + (g / 7) % {len(HANDLERS)}]"
    failed = "(g % 100 < 3)"
    quarter = max(events // 4, 1)
    eighth = max(events // 8, 1)
    words = _array(WORDS)
    comment = (
        f"array_to_string(ARRAY(SELECT ({words})"  # noqa: S608 - constants
        f"[1 + (s.id * w * 7919) % {len(WORDS)}] "
        "FROM generate_series(1, 3 + (s.id % 9)) w), ' ') "
        "|| CASE WHEN s.id % 7 = 0 THEN ' about my invoice' ELSE '' END"
    )
    answer = (
        "CASE a "
        f"WHEN 1 THEN to_jsonb(({_array(FIRST_NAMES)})[1 + s.id % {len(FIRST_NAMES)}]"
        " || ' Smith') "
        "WHEN 2 THEN to_jsonb('user' || s.id || '@example.com') "
        "WHEN 3 THEN to_jsonb(1 + s.id % 5) "
        f"WHEN 4 THEN jsonb_build_array(({_array(TOPICS)})[1 + s.id % {len(TOPICS)}]) "
        f"ELSE to_jsonb({comment}) END"
    )
    return [
        "INSERT INTO submissions_bot (id, name, slug, secret, previous_secret, "  # noqa: S608
        "is_active, created_at, wire_mapping) SELECT b, 'Bench ' || b, 'bench-' || b, "
        f"'s', '', true, now(), '{{}}' FROM generate_series(1, {BOTS}) b",
        "INSERT INTO submissions_webhookevent (id, received_at, handler_name, status, "  # noqa: S608
        "error_code, error_detail, traceback, headers, raw_body, body_truncated, "
        "body_size, body_sha256, delivery_id, conversation_id, user_id, bot_id, "
        "erased_by, payload, response_status, response_body, duration_ms) "
        f"SELECT g, {when}, {handler}, "
        f"CASE WHEN {failed} THEN 'failed' ELSE 'processed' END, "
        f"CASE WHEN {failed} THEN 'handler_error' ELSE '' END, "
        f"CASE WHEN {failed} THEN 'RuntimeError: CRM timed out' ELSE '' END, '', "
        '\'{"Content-Type": "application/json"}\', '
        "convert_to('{\"handler\": \"feedback\"}', 'UTF8'), "
        "false, 22, md5(g::text) || md5(g::text), 'd-' || g, "
        f"'conv-' || lpad(((g::bigint * 7919) % {quarter})::text, 8, '0'), "
        f"'user-' || lpad(((g::bigint * 104729) % {eighth})::text, 8, '0'), 1 + g % {BOTS}, "
        f"'', jsonb_build_object('handler', {handler}, 'id', 'd-' || g), "
        f"CASE WHEN {failed} THEN 500 ELSE 200 END, '{{\"blocks\": []}}', 3.5 "
        f"FROM generate_series(1, {events}) g",
        "INSERT INTO submissions_formsubmission (id, handler_name, conversation_id, "
        "user_id, submitted_at, bot_id, event_id) SELECT id, handler_name, "
        "conversation_id, user_id, received_at, bot_id, id FROM submissions_webhookevent",
        "INSERT INTO submissions_formanswer (id, position, key, label, input_type, "  # noqa: S608
        f"value, value_text, submission_id) SELECT (s.id - 1) * {ANSWERS} + a, a - 1, "
        "(ARRAY['name', 'email', 'rating', 'topics', 'comment'])[a], "
        "(ARRAY['Your name', 'Your email', 'How would you rate us?', "
        "'Which topics interest you?', 'Anything else?'])[a], "
        "(ARRAY['text', 'email', 'number', 'multi', 'textarea'])[a], v, "
        "CASE jsonb_typeof(v) WHEN 'string' THEN v #>> '{}' WHEN 'array' THEN "
        "v ->> 0 ELSE v::text END, s.id "
        f"FROM submissions_formsubmission s, generate_series(1, {ANSWERS}) a, "
        f"LATERAL (SELECT {answer} AS v) x",
        "INSERT INTO submissions_handlerrun (id, attempt, trigger, handler_name, "
        "started_at, finished_at, duration_ms, outcome, error_type, message, traceback, "
        "event_id) SELECT id, 1, 'delivery', handler_name, received_at, received_at, "
        "3.5, CASE status WHEN 'failed' THEN 'failed' ELSE 'succeeded' END, "
        "CASE status WHEN 'failed' THEN 'builtins.RuntimeError' ELSE '' END, "
        "error_detail, '', id FROM submissions_webhookevent",
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


def prepare(name: str, events: int, start: datetime, end: datetime) -> float:
    url = database_url(name)
    database_recreate(url)
    manage(url, "migrate", "submissions", "0013")
    started = time.perf_counter()
    with connect(name) as conn:
        # As a bulk load goes: the indexes no constraint needs are dropped,
        # the rows inserted, the indexes built again (each in one pass).
        conn.execute("SET maintenance_work_mem = '1GB'")
        indexes = conn.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
            "FROM pg_index i WHERE i.indrelid::regclass::text = ANY(%s) AND NOT "
            "EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            [TABLES],
        ).fetchall()
        for index, _ in indexes:
            conn.execute(f'DROP INDEX "{index}"')
        for statement in fill_sql(events, start, end):
            conn.execute(statement)
        for _, definition in indexes:
            conn.execute(definition)
    return time.perf_counter() - started


def run_script(script: str, *args: str) -> None:
    """Another bench script, in its own process, its output shown as it goes."""
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(ROOT / "bench" / script), *args], cwd=ROOT, check=False
    )
    if result.returncode != 0:
        raise BenchError(f"bench/{script} failed ({result.returncode}).")


def vacuum(name: str) -> float:
    """VACUUM ANALYZE the four tables, as autovacuum would in time: the
    visibility map the admin's index-only counts need."""
    started = time.perf_counter()
    with connect(name) as conn:
        for table in TABLES:
            conn.execute(f"VACUUM ANALYZE {table}")
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
    parser.add_argument(
        "--months",
        type=int,
        default=12,
        help="Months before this one the events start in (default 12).",
    )
    parser.add_argument(
        "--pages",
        action="store_true",
        help="Time the admin pages on the partitioned database before the purge.",
    )
    parser.add_argument(
        "--export",
        action="store_true",
        help="Time the CSV export of the partitioned database before the purge.",
    )
    parser.add_argument("--export-runs", type=int, default=2)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep the partitioned database an earlier run filled and converted "
        "(same --events and --months) and its figures; go on from there.",
    )
    parser.add_argument(
        "--no-purge",
        action="store_true",
        help="Stop before the purge (to --reuse the database in a later run).",
    )
    args = parser.parse_args(argv)
    if args.events < 1000 or args.months < 2:
        raise BenchError("--events must be at least 1000 and --months at least 2.")
    now = datetime.now(UTC)
    first_month, cut = month_start(now, args.months), month_start(now, args.months - 1)
    start = first_month + timedelta(days=1)
    million = args.events / 1_000_000
    rows = args.events * (3 + ANSWERS)
    partitioned = database_url(PARTITIONED)
    results: dict = {}
    if args.reuse:
        results = json.loads((RESULTS / "partitions.json").read_text())
        if (results.get("events"), results.get("months")) != (args.events, args.months):
            raise BenchError("--reuse: the last run had other --events or --months.")
        if count_events(PARTITIONED) != args.events:
            raise BenchError(f"--reuse: {PARTITIONED} no longer holds the events.")
        start = datetime.fromisoformat(results["first_event_at"])
        now = datetime.fromisoformat(results["filled_up_to"])  # the same rows
        results.pop("taken_at", None)
        results.pop("machine", None)
        manage(database_url(PARTITIONED), "migrate")  # what came since (no rows moved)
    commands = [
        *results.get("commands", []),
        "bench/partitions.py " + " ".join(argv or sys.argv[1:]),
    ]
    results.update(
        {
            "commands": commands,
            "events": args.events,
            "months": args.months,
            "rows": rows,
            "first_event_at": start.isoformat(),
            "filled_up_to": now.isoformat(),
        }
    )

    def save() -> Path:
        return write_results("partitions", results)

    say(f"{args.events} events ({rows} rows in four tables) from {start:%Y-%m-%d} on")
    if not args.reuse:
        filled = prepare(PARTITIONED, args.events, start, now)
        say(f"filled the database at 0013 (plain tables) in {filled:.1f} s")
        size_before = size_mib(PARTITIONED)
        started = time.perf_counter()
        manage(partitioned, "migrate", "submissions", "0014")
        convert_s = time.perf_counter() - started
        size_converted = size_mib(PARTITIONED)
        say(
            f"(a) migrate 0014: {convert_s:.1f} s, {convert_s / million:.1f} s per "
            f"million events; {size_before} MiB plain, {size_converted} MiB partitioned"
        )
        manage(partitioned, "migrate")  # the rest, for today's code
        vacuum_s = vacuum(PARTITIONED)
        say(f"VACUUM ANALYZE of the four tables: {vacuum_s:.1f} s")
        results.update(
            {
                "fill_seconds": round(filled, 1),
                "vacuum_seconds": round(vacuum_s, 1),
                "conversion": {
                    "seconds": round(convert_s, 2),
                    "seconds_per_million_events": round(convert_s / million, 2),
                    "size_before_mib": size_before,
                    "size_after_mib": size_converted,
                },
            }
        )
        save()
    if args.pages:
        run_script("admin_pages.py", "--database", partitioned)
    if args.export:
        run_script(
            "export.py", "--database", partitioned, "--runs", str(args.export_runs)
        )
    if args.no_purge:
        say(f"stopped before the purge; wrote {save().relative_to(ROOT)}")
        return 0

    started = time.perf_counter()
    manage(partitioned, "showmigrations", "submissions")
    startup_s = time.perf_counter() - started
    say(f"a manage.py process that does next to nothing: {startup_s:.2f} s")
    total = count_events(PARTITIONED)
    started = time.perf_counter()
    manage(
        partitioned,
        "purge_events",
        "--before",
        f"{cut:%Y-%m-%d}",
        "--include-submissions",
    )
    drop_s = time.perf_counter() - started
    dropped = total - count_events(PARTITIONED)
    drop_size = size_mib(PARTITIONED)
    say(
        f"(b) one month ({dropped} events): purge_events {drop_s:.2f} s, {drop_size} MiB after"
    )

    # The plain copy only now: the disk holds two copies, not three (the
    # conversion needs the old tables and the new ones at once).
    prepare(PLAIN, args.events, start, now)
    vacuum(PLAIN)
    plain_size = size_mib(PLAIN)
    delete_s, deleted = delete_batched(PLAIN, cut)
    if dropped != deleted:
        raise BenchError(f"Dropped {dropped} events but deleted {deleted}.")
    delete_size = size_mib(PLAIN)
    say(
        f"(b) batched DELETE of the same {deleted} events: {delete_s:.2f} s, "
        f"{plain_size} MiB before, {delete_size} MiB after"
    )
    results.update(
        {
            "manage_py_startup_seconds": round(startup_s, 2),
            "one_month": {
                "events": dropped,
                "drop": {"seconds": round(drop_s, 2), "size_after_mib": drop_size},
                "batched_delete": {
                    "seconds": round(delete_s, 2),
                    "batch": BATCH,
                    "size_before_mib": plain_size,
                    "size_after_mib": delete_size,
                },
            },
        }
    )
    say(f"wrote {save().relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
