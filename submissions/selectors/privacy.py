"""Reads of one person's data: what an erasure finds, and the hash its log keeps."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any

from submissions.conf import webhook_settings
from submissions.models import (
    Bot,
    FormAnswer,
    FormSubmission,
    HandlerRun,
    WebhookEvent,
)


@dataclass(frozen=True, slots=True)
class ErasureCounts:
    submissions: int = 0
    answers: int = 0
    events: int = 0
    runs: int = 0

    def __add__(self, other: ErasureCounts) -> ErasureCounts:
        return ErasureCounts(
            self.submissions + other.submissions,
            self.answers + other.answers,
            self.events + other.events,
            self.runs + other.runs,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "submissions": self.submissions,
            "answers": self.answers,
            "events": self.events,
            "runs": self.runs,
        }


def erasure_selector_hash(value: str) -> str:
    """The erasure log's keyed hash of an erased id: comparable, not reversible."""
    key = webhook_settings().erasure_hash_key.encode()
    return hmac.new(key, value.encode("utf-8", "surrogatepass"), "sha256").hexdigest()


def erasure_querysets(*, selector: str, value: str, bot: Bot | None) -> tuple[Any, Any]:
    submissions = FormSubmission.objects.filter(**{selector: value})
    events = WebhookEvent.objects.filter(**{selector: value})
    if bot is not None:
        submissions, events = submissions.filter(bot=bot), events.filter(bot=bot)
    unparsed = _unparsed_mentions(value=value, bot=bot)
    events = (
        events
        | WebhookEvent.objects.filter(
            pk__in=submissions.exclude(event=None).values("event_id")
        )
        | WebhookEvent.objects.filter(pk__in=unparsed)
    )
    return submissions, events


def _unparsed_mentions(*, value: str, bot: Bot | None) -> list[int]:
    """Requests refused or unparsed before naming a person, but carrying ``value``.

    A request refused for its token (or its body) keeps its first bytes and
    the token's claims, with no user or conversation id: it is found when
    ``value`` appears there as a JSON string (as the bot sends ids). Read in
    chunks: erasure is rare, and such bodies are capped small.
    """
    needles = {
        json.dumps(value).encode(),
        json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"),
    }
    candidates = WebhookEvent.objects.filter(
        # Unparsed deliveries too: verified, kept whole, but their ids unread.
        status__in=(WebhookEvent.Status.REJECTED, WebhookEvent.Status.UNPARSED),
        user_id="",
        conversation_id="",
        erased_at__isnull=True,
    )
    if bot is not None:
        candidates = candidates.filter(bot=bot)
    found = []
    for pk, raw, token_info in (
        candidates.order_by()
        .values_list("pk", "raw_body", "token_info")
        .iterator(chunk_size=500)
    ):
        claims = json.dumps(token_info).encode() if token_info else b""
        text = bytes(raw or b"") + b"\n" + claims
        if any(needle in text for needle in needles):
            found.append(pk)
    return found


def personal_data_count(
    *, selector: str, value: str, bot: Bot | None = None
) -> ErasureCounts:
    """What ``personal_data_erase`` would remove or scrub."""
    submissions, events = erasure_querysets(selector=selector, value=value, bot=bot)
    return ErasureCounts(
        submissions=submissions.count(),
        answers=FormAnswer.objects.filter(submission__in=submissions).count(),
        events=events.count(),
        runs=HandlerRun.objects.filter(event__in=events).count(),
    )
