import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from handlers import registry
from handlers.mapping import suggest
from submissions.management.options import bot_from_slug
from submissions.models import WebhookEvent
from submissions.wire_preview import wire_mapping_preview, wire_mapping_validate


class Command(BaseCommand):
    help = (
        "Show, set or suggest a bot's wire mapping: where its deliveries keep the "
        "handler name, ids and answers (JSON Pointers; docs/contract.md). --set "
        "validates the file against the bot's last stored deliveries first."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slug", help="The bot's slug.")
        group = parser.add_mutually_exclusive_group()
        group.add_argument(
            "--show", action="store_true", help="Print the mapping (default)."
        )
        group.add_argument(
            "--set", metavar="FILE.json", help="Set the mapping from a file."
        )
        group.add_argument(
            "--suggest",
            metavar="EVENT_ID",
            type=int,
            help="Propose a mapping from a stored delivery, and preview it.",
        )
        group.add_argument(
            "--clear", action="store_true", help="Remove the mapping (defaults again)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bot = bot_from_slug(options["slug"])
        if options["set"] or options["clear"]:
            if options["clear"]:
                data: Any = {}
            else:
                try:
                    data = json.loads(Path(options["set"]).read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise CommandError(f"Cannot read {options['set']}: {exc}") from None
            try:
                wire_mapping_validate(bot=bot, data=data)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
            bot.wire_mapping = data
            bot.save(update_fields=["wire_mapping"])
            self.stdout.write(
                self.style.SUCCESS(f"The wire mapping of {bot.slug} is set.")
            )
            self._preview(bot, data)
            self.stdout.write(
                f"Read stored deliveries again with: manage.py reparse_events --bot {bot.slug}"
            )
            return
        if options["suggest"] is not None:
            event = WebhookEvent.objects.filter(bot=bot, pk=options["suggest"]).first()
            if event is None or not event.raw_body:
                raise CommandError(
                    f"Bot {bot.slug} has no stored delivery {options['suggest']} with a body."
                )
            try:
                body = json.loads(bytes(event.raw_body))
            except ValueError:
                raise CommandError(f"Event {event.pk}'s body is not JSON.") from None
            data = suggest(body, handler_names=registry.names())
            self.stdout.write(json.dumps(data, indent=2))
            self._preview(bot, data)
            self.stdout.write("Save it to a file and apply it with --set FILE.json.")
            return
        self.stdout.write(json.dumps(bot.wire_mapping or {}, indent=2))

    def _preview(self, bot: Any, data: Any) -> None:
        for row in wire_mapping_preview(bot=bot, data=data):
            if row.error:
                self.stdout.write(f"  event {row.event_id}: not readable: {row.error}")
            else:
                self.stdout.write(
                    f"  event {row.event_id}: handler {row.handler_name!r}, "
                    f"conversation {row.conversation_id!r}, user {row.user_id!r}, "
                    f"{len(row.answers)} answer(s)"
                )
