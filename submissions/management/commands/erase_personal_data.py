"""``erase_personal_data``: serve one person's erasure request."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from submissions.management.options import bot_from_slug
from submissions.models import ErasureLog
from submissions.selectors.privacy import personal_data_count
from submissions.services.privacy import personal_data_erase


class Command(BaseCommand):
    help = (
        "Erase one person's data: their form submissions and answers are deleted, "
        "and their webhook events and handler runs keep only an audit stub. Each "
        "request is logged (the id as a keyed hash)."
    )

    def add_arguments(self, parser: Any) -> None:
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user-id", help="The person's user id, as the bot sent it.")
        who.add_argument("--conversation-id", help="One conversation's id.")
        parser.add_argument("--bot", help="Only this bot's data (its slug).")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would go; change nothing.",
        )
        parser.add_argument(
            "--yes", action="store_true", help="Erase without asking for confirmation."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["user_id"] is not None:
            selector, value = ErasureLog.Selector.USER_ID, options["user_id"]
        else:
            selector, value = (
                ErasureLog.Selector.CONVERSATION_ID,
                options["conversation_id"],
            )
        if not value.strip():
            raise CommandError(f"--{selector.replace('_', '-')} must not be empty.")
        bot = bot_from_slug(options["bot"])
        counts = personal_data_count(selector=selector, value=value, bot=bot)
        summary = ", ".join(f"{n} {name}" for name, n in counts.as_dict().items())
        if options["dry_run"]:
            self.stdout.write(f"Would erase: {summary}.")
            return
        if not options["yes"]:
            if not sys.stdin.isatty():
                raise CommandError("Add --yes to erase without a terminal to confirm.")
            answer = input(f"Erase {summary}? This cannot be undone. Type 'yes': ")
            if answer.strip().lower() != "yes":
                raise CommandError("Nothing erased.")
        erased = personal_data_erase(
            selector=selector,
            value=value,
            bot=bot,
            erased_by=f"{getpass.getuser()} (command)",
            source="command",
        )
        summary = ", ".join(f"{n} {name}" for name, n in erased.as_dict().items())
        self.stdout.write(self.style.SUCCESS(f"Erased: {summary}."))
