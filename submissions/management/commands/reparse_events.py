from typing import Any

from django.core.management.base import BaseCommand, CommandError

from submissions.management.options import bot_from_slug, parse_moment
from submissions.services.reparse import REPARSABLE, webhook_events_reparse


class Command(BaseCommand):
    help = (
        "Read a bot's stored deliveries again with its current wire mapping: create "
        "the submissions and answers they lacked, replace answers whose reading "
        "changed, and record each change on the event. Runs no handler (run "
        "replay_events afterwards for that); running it twice changes nothing the "
        "second time; erased events are never touched."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bot", required=True, help="The bot's slug.")
        parser.add_argument(
            "--since", help="Received at or after (date or ISO date-time)."
        )
        parser.add_argument(
            "--status",
            help=f"Comma-separated statuses to read again (default: {','.join(REPARSABLE)}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Say what would change; change nothing.",
        )
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        bot = bot_from_slug(options["bot"])
        statuses = REPARSABLE
        if options["status"]:
            statuses = tuple(
                s.strip() for s in options["status"].split(",") if s.strip()
            )
            unknown = sorted(set(statuses) - set(REPARSABLE))
            if unknown:
                raise CommandError(
                    f"--status {unknown[0]!r} cannot be read again; choose from "
                    f"{', '.join(REPARSABLE)}."
                )
        counts: dict[str, int] = {}
        verb = "would be" if options["dry_run"] else ""
        for result in webhook_events_reparse(
            bot=bot,
            by="manage.py reparse_events",
            since=parse_moment(options["since"], option="--since")
            if options["since"]
            else None,
            statuses=statuses,
            dry_run=options["dry_run"],
            batch_size=options["batch_size"],
        ):
            counts[result.change] = counts.get(result.change, 0) + 1
            if result.change in ("created", "replaced"):
                self.stdout.write(
                    f"event {result.event_id}: {result.change}{' ' + verb if verb else ''} "
                    f"({', '.join(result.fields)}); {result.status_before} -> "
                    f"{result.status_after}"
                )
            elif result.change == "unreadable" and options["verbosity"] > 1:
                self.stdout.write(
                    f"event {result.event_id}: unreadable: {result.detail}"
                )
        summary = ", ".join(f"{n} {change}" for change, n in sorted(counts.items()))
        self.stdout.write(
            self.style.SUCCESS(
                f"{'Dry run: ' if options['dry_run'] else ''}read {sum(counts.values())} "
                f"event(s) of {bot.slug} again{': ' + summary if counts else ''}."
            )
        )
