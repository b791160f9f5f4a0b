"""Signal receivers of the submissions app."""

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from submissions.models import Bot
from submissions.selectors.bots import bot_cache_clear


@receiver(post_save, sender=Bot, dispatch_uid="submissions.bot_saved")
@receiver(post_delete, sender=Bot, dispatch_uid="submissions.bot_deleted")
def on_bot_changed(**kwargs: Any) -> None:
    """This process drops its cached bots at once; others within ``BOT_CACHE_SECONDS``."""
    bot_cache_clear()
