"""Counting deliveries as they are answered: one receiver of ``delivery_answered``.

It runs on the request path after the reply is committed, so it is quick (one
indexed read of the delivery's run, only when a handler ran) and never raises:
a metric is not worth a delivery's reply.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.signals import request_started
from django.dispatch import receiver

from observability import metrics
from observability.collectors import db_pool_refresh
from submissions.models import HandlerRun, WebhookEvent
from submissions.signals import delivery_answered
from submissions.tokens import TOKEN_ERROR_CODES

logger = logging.getLogger(__name__)

#: Statuses whose event has a run of its own (a duplicate's run is its original's).
RAN = (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.FAILED)
TIMEOUT_CODE = "handler_timeout"


@receiver(delivery_answered, sender=WebhookEvent, dispatch_uid="observability.count")
def on_delivery_answered(*, event: WebhookEvent, **kwargs: Any) -> None:
    try:
        delivery_count(event)
    except Exception:  # never lose a reply to a metric
        logger.exception("counting event %s for the metrics failed", event.pk)


def delivery_count(event: WebhookEvent) -> None:
    bot = event.bot.slug
    rejected = event.status in (
        WebhookEvent.Status.REJECTED,
        WebhookEvent.Status.UNPARSED,
    )
    handler = "" if rejected else metrics.handler_label(event.handler_name)
    metrics.DELIVERIES.labels(bot=bot, handler=handler, status=event.status).inc()
    if event.duration_ms is not None:
        metrics.DELIVERY_DURATION.labels(bot=bot).observe(event.duration_ms / 1000)
    if event.status == WebhookEvent.Status.REJECTED:
        if event.error_code in TOKEN_ERROR_CODES:
            metrics.REJECTED_TOKENS.labels(bot=bot, code=event.error_code).inc()
        return
    if event.status not in RAN or not event.handler_name:
        return
    run = (
        HandlerRun.objects.filter(event_id=event.pk)
        .order_by("-attempt")
        .values_list("duration_ms", "outcome")
        .first()
    )
    if run is not None:
        duration_ms, outcome = run
        metrics.HANDLER_DURATION.labels(handler=handler, outcome=outcome).observe(
            duration_ms / 1000
        )
    if event.error_code == TIMEOUT_CODE or (
        run is not None and run[1] == HandlerRun.Outcome.TIMED_OUT
    ):
        metrics.HANDLER_TIMEOUTS.labels(bot=bot, handler=handler).inc()


@receiver(request_started, dispatch_uid="observability.pool")
def on_request_started(**kwargs: Any) -> None:
    # Each worker's pool gauges are its own: refreshed as requests come, so a
    # scrape answered by one worker still reads every worker's recent value.
    try:
        db_pool_refresh()
    except Exception:
        logger.exception("reading the connection pool's stats failed")
