"""Option parsing shared by the management commands."""

import argparse
import difflib
from datetime import UTC, datetime

from django.core.management.base import CommandError

from submissions import moments
from submissions.models import Bot


def parse_moment(text: str, *, option: str, end: bool = False) -> datetime:
    """A date (whole day) or an ISO 8601 date-time (``submissions.moments``).

    ``end`` makes a bare date mean "up to the end of that day".
    """
    try:
        return moments.parse_moment(text, end=end)
    except ValueError:
        raise CommandError(
            f"{option} takes a date like 2025-01-31 or a date-time like "
            f"2025-01-31T14:30 (ISO 8601), not {text!r}."
        ) from None


def bot_from_slug(slug: str | None) -> Bot | None:
    """The bot with ``slug`` (None for None), or a CommandError naming the known ones."""
    if slug is None:
        return None
    bot = Bot.objects.filter(slug=slug).first()
    if bot is None:
        known = list(Bot.objects.order_by("slug").values_list("slug", flat=True))
        close = difflib.get_close_matches(slug, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise CommandError(
            f"No bot with slug {slug!r}.{hint} Known bots: {', '.join(known) or 'none'}."
        )
    return bot


def utc_date(text: str) -> datetime:
    """An argparse ``type``: ``YYYY-MM-DD`` as that day's midnight UTC."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a date as YYYY-MM-DD, not {text!r}"
        ) from None
