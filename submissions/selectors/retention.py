"""Reads of retention: what a form's policy says is too old."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from submissions.models import (
    FormSubmission,
    RetentionPolicy,
    WebhookEvent,
)


def retention_querysets(
    policy: RetentionPolicy, *, now: datetime
) -> tuple[Any, Any, datetime]:
    """The submissions and events ``policy`` says are too old, and its cutoff."""
    before = now - timedelta(days=policy.keep_days)
    submissions = FormSubmission.objects.filter(
        bot=policy.bot_id, handler_name=policy.handler_name, submitted_at__lt=before
    )
    events = WebhookEvent.objects.filter(
        bot=policy.bot_id, handler_name=policy.handler_name, received_at__lt=before
    )
    return submissions, events, before
