"""The Prometheus series this project exports, and how their labels are bounded.

Counted where they happen (a web process answering a delivery), in
``PROMETHEUS_MULTIPROC_DIR`` when it is set: every gunicorn worker writes its
own file there, a scrape of any worker sums them, and a dead worker's counts
stay in (``gunicorn.conf.py`` marks it dead and empties the directory only
when the master starts). The series read from the database at scrape time
are in ``observability.collectors``.

Labels come from the database (a bot's slug: bots are made by staff) or from
fixed sets (statuses, token error codes); a handler name is the caller's
choice, so only a registered one is a label value: any other is ``unknown``,
and a request that never named one (rejected, unparsed) has ``handler=""``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from handlers.registry import registry

#: Seconds; a delivery is answered within its handler's deadline (8 s).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 8, 10, 30)

UNKNOWN_HANDLER = "unknown"

DELIVERIES = Counter(
    "webhooks_deliveries",
    "Deliveries answered, by bot, handler and stored status.",
    ["bot", "handler", "status"],
)
DELIVERY_DURATION = Histogram(
    "webhooks_delivery_duration_seconds",
    "Time from request to reply, as stored on the event (duration_ms).",
    ["bot"],
    buckets=DURATION_BUCKETS,
)
HANDLER_DURATION = Histogram(
    "webhooks_handler_duration_seconds",
    "Time a delivery's handler run took (its HandlerRun's duration_ms).",
    ["handler", "outcome"],
    buckets=DURATION_BUCKETS,
)
HANDLER_TIMEOUTS = Counter(
    "webhooks_handler_timeouts",
    "Deliveries whose handler passed its deadline (the bot got the fallback reply).",
    ["bot", "handler"],
)
REJECTED_TOKENS = Counter(
    "webhooks_rejected_tokens",
    "Requests to a known bot refused for their token, by error code.",
    ["bot", "code"],
)
# One value per process: "livesum" adds the live workers' values up, and a
# dead worker's file is left out once gunicorn marks it dead.
DB_POOL_CONNECTIONS = Gauge(
    "webhooks_db_pool_connections",
    "This pool's PostgreSQL connections (psycopg pool): open, idle, max.",
    ["state"],
    multiprocess_mode="livesum",
)
DB_POOL_WAITING = Gauge(
    "webhooks_db_pool_requests_waiting",
    "Requests waiting for a pooled connection right now.",
    multiprocess_mode="livesum",
)


def handler_label(name: str) -> str:
    """A registered handler's name, ``""`` for none, ``unknown`` for anything else."""
    if not name:
        return ""
    return name if name in registry else UNKNOWN_HANDLER
