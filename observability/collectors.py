"""What a scrape reads: every worker's counters, and a few cheap database counts.

The database series are the same whichever process or machine answers the
scrape (they are counts of rows): aggregate them across instances with
``max``, never ``sum``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from django.db import Error, connections
from django.db.models import Count
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from alerts.models import SentAlert
from observability import metrics
from submissions.models import HandlerRun
from submissions.services import partitions

logger = logging.getLogger(__name__)

#: The follow-up task, and the path earlier releases queued it under.
FOLLOW_UP_TASKS = (
    "submissions.followups.run_follow_up",
    "submissions.tasks.run_follow_up",
)


def db_pool_refresh(alias: str = "default") -> None:
    """This process's psycopg pool, into its gauges (nothing without a pool)."""
    connection = connections[alias]
    if connection.vendor != "postgresql" or not connection.settings_dict.get(
        "OPTIONS", {}
    ).get("pool"):
        return
    stats = connection.pool.get_stats()
    metrics.DB_POOL_CONNECTIONS.labels(state="open").set(stats.get("pool_size", 0))
    metrics.DB_POOL_CONNECTIONS.labels(state="idle").set(stats.get("pool_available", 0))
    metrics.DB_POOL_CONNECTIONS.labels(state="max").set(stats.get("pool_max", 0))
    metrics.DB_POOL_WAITING.set(stats.get("requests_waiting", 0))


class DatabaseCollector:
    """Gauges and counts read from the database at scrape time, a few indexed counts."""

    def collect(self) -> Iterator[Metric]:
        try:
            families = list(self._families())
        except Error:
            logger.warning("metrics: the database did not answer", exc_info=True)
            families = []
        up = GaugeMetricFamily(
            "webhooks_metrics_database_up",
            "1 if this scrape read the database's series, 0 if it could not.",
            value=1 if families else 0,
        )
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        ready = DBTaskResult.objects.filter(status=TaskResultStatus.READY)
        queued = GaugeMetricFamily(
            "webhooks_task_queue_depth",
            "Tasks waiting in the database queue (django-tasks-db), by queue.",
            labels=["queue"],
        )
        for queue, count in (
            ready.values_list("queue_name").annotate(n=Count("pk")).order_by()
        ):
            queued.add_metric([queue], count)
        yield queued
        yield GaugeMetricFamily(
            "webhooks_follow_up_queue_depth",
            "Handlers' follow-up tasks waiting for the task worker.",
            value=ready.filter(task_path__in=FOLLOW_UP_TASKS).count(),
        )
        yield GaugeMetricFamily(
            "webhooks_follow_ups_dead",
            "Follow-up runs that failed for good (HandlerRun outcome dead), kept rows.",
            value=HandlerRun.objects.filter(outcome=HandlerRun.Outcome.DEAD).count(),
        )
        sent = CounterMetricFamily(
            "webhooks_alerts_sent",
            "Alerts sent (the task worker's record of them), by kind and channel.",
            labels=["kind", "channel"],
        )
        for kind, channel, count in (
            SentAlert.objects.filter(status=SentAlert.Status.SENT)
            .values_list("kind", "channel")
            .annotate(n=Count("pk"))
            .order_by()
        ):
            sent.add_metric([kind, channel], count)
        yield sent
        if partitions.is_partitioned():  # PostgreSQL's monthly layout only
            yield GaugeMetricFamily(
                "webhooks_partitions_ahead",
                "Whole months after this one that every partitioned table has a "
                "partition for (partitions --ensure keeps 3).",
                value=partitions.months_ahead(),
            )


class _ThisProcess:
    """The default registry (one process: runserver, tests), as a collector."""

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    """A registry for one scrape: every worker's files, or this process, and the database."""
    db_pool_refresh()
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseCollector())
    return registry
