"""Reads of bots: this process's cache of active bots, a bot's last deliveries."""

from __future__ import annotations

from time import monotonic

from submissions.conf import webhook_settings
from submissions.models import (
    Bot,
    WebhookEvent,
)

#: slug -> (monotonic expiry, bot): this process's copies of active bots.
_active_bots: dict[str, tuple[float, Bot]] = {}


def bot_get_active(*, slug: str, fresh: bool = False) -> Bot | None:
    """The active bot with this URL slug, or None.

    Read at most once per ``BOT_CACHE_SECONDS`` per process (the bot lookup
    was a fifth of a delivery's CPU): a deactivated or deleted bot is refused
    by this process at once when it saved the change, by the others within
    that time. A token the cached secrets refuse reads the bot again
    (``fresh=True``, the intake does it), so a rotated secret works at once
    everywhere. Slugs that name no active bot are never cached. The bot
    returned may be shared between threads: read it, never change it.
    """
    now = monotonic()
    if not fresh:
        cached = _active_bots.get(slug)
        if cached is not None and cached[0] > now:
            return cached[1]
    bot = Bot.objects.filter(slug=slug, is_active=True).first()
    ttl = webhook_settings().bot_cache_seconds
    if bot is None or ttl <= 0:
        _active_bots.pop(slug, None)
    else:
        _active_bots[slug] = (now + ttl, bot)
    return bot


def bot_cache_clear() -> None:
    """Forget every cached bot (a bot was saved or deleted in this process)."""
    _active_bots.clear()


def bot_recent_deliveries(*, bot: Bot, limit: int = 20) -> list[WebhookEvent]:
    """``bot``'s latest requests, newest first (one query, on the bot's index)."""
    return list(
        WebhookEvent.objects.filter(bot=bot)
        .order_by("-received_at", "-id")
        .defer("headers", "traceback", "response_body")[:limit]
    )
