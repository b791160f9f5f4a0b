"""Writes of bots: their secrets."""

from __future__ import annotations

from django.db import transaction

from submissions.models import (
    Bot,
)


@transaction.atomic
def bot_rotate_secret(*, bot: Bot) -> str:
    """Give ``bot`` a new secret; the current one stays valid as ``previous_secret``.

    Returns the new secret. The row is locked so two rotations cannot both
    keep the same previous secret.
    """
    locked = Bot.objects.select_for_update().get(pk=bot.pk)
    new_secret = locked.rotate_secret()
    locked.save(update_fields=["secret", "previous_secret"])
    bot.secret, bot.previous_secret = locked.secret, locked.previous_secret
    return new_secret
