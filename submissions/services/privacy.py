"""Erasing one person's data (``erase_personal_data``), leaving audit stubs."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from submissions.models import (
    Bot,
    ErasureLog,
    HandlerRun,
    WebhookEvent,
)
from submissions.selectors.privacy import (
    ErasureCounts,
    erasure_querysets,
    erasure_selector_hash,
    personal_data_count,
)
from submissions.services.runs import PERSONAL_RUN_FIELDS
from submissions.services.tally_marks import tally_rows_mark

#: Passes of the erasure: a delivery stored while one ran is erased by the next.
ERASURE_PASSES = 5


def personal_data_erase(
    *,
    selector: str,
    value: str,
    erased_by: str,
    source: str,
    bot: Bot | None = None,
) -> ErasureCounts:
    """Erase one person's data: their submissions and answers go, their events
    and runs keep only an audit stub (id, bot, handler name, times, status,
    sizes), marked erased. Logged in ``ErasureLog`` with the id hashed.

    ``selector`` is ``"user_id"`` or ``"conversation_id"``. Each pass is one
    transaction; passes repeat until one finds nothing, so a delivery stored
    while a pass ran (committed after it chose its rows) goes too. A run
    recorded after its event was erased keeps no content (``handler_run_record``).
    Running it again finds nothing more to erase (and logs a request with
    zero counts).
    """
    if selector not in ErasureLog.Selector.values or not value:
        raise ValueError(f"Erase by user_id or conversation_id, not {selector!r}.")
    total = ErasureCounts()
    for _ in range(ERASURE_PASSES):
        counts = _personal_data_erase_pass(
            selector=selector, value=value, erased_by=erased_by, bot=bot
        )
        total += counts
        if not (counts.events or counts.submissions):
            break
    ErasureLog.objects.create(
        requested_by=erased_by,
        source=source,
        selector=selector,
        selector_hash=erasure_selector_hash(value),
        bot=bot,
        **total.as_dict(),
    )
    return total


@transaction.atomic
def _personal_data_erase_pass(
    *, selector: str, value: str, erased_by: str, bot: Bot | None
) -> ErasureCounts:
    counts = personal_data_count(selector=selector, value=value, bot=bot)
    submissions, events = erasure_querysets(selector=selector, value=value, bot=bot)
    event_ids = list(events.values_list("pk", flat=True))
    # The events first: their row locks make a run being recorded finish
    # before its run is scrubbed below, and one recorded later sees them erased.
    WebhookEvent.objects.filter(pk__in=event_ids).update(
        payload=None,
        raw_body=b"",
        headers={},
        response_body=None,
        error_detail="",
        traceback="",
        conversation_id="",
        user_id="",
        remote_addr=None,
        body_sha256="",
        token_info=None,
        erased_at=timezone.now(),
        erased_by=erased_by,
    )
    HandlerRun.objects.filter(event_id__in=event_ids).update(**PERSONAL_RUN_FIELDS)
    tally_rows_mark(submissions)  # their days are counted again
    submissions.delete()  # answers go with them
    return counts
