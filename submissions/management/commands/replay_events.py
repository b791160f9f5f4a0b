from typing import Any

from django.core.management.base import BaseCommand, CommandError

from submissions.management.options import bot_from_slug, parse_moment
from submissions.models import HandlerRun, WebhookEvent
from submissions.replay import REPLAYABLE, webhook_events_replay
from submissions.selectors.events import webhook_event_replay_queryset


class Command(BaseCommand):
    help = (
        "Run stored events again through today's handler code (e.g. failed ones after "
        "a fix, unrouted ones once their handler exists). Each replay adds a handler "
        "run; none creates a second submission."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--status",
            action="append",
            choices=REPLAYABLE,
            help="Event status to replay; repeat for several (default: failed and unrouted).",
        )
        parser.add_argument("--bot", help="Only this bot's events (its slug).")
        parser.add_argument("--handler", help="Only events for this handler name.")
        parser.add_argument(
            "--since", help="Received at or after (date or ISO date-time)."
        )
        parser.add_argument(
            "--until", help="Received before (a bare date includes that day)."
        )
        parser.add_argument(
            "--event", type=int, action="append", help="Only this event id."
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would be replayed; change nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        events = webhook_event_replay_queryset(
            statuses=options["status"]
            or [WebhookEvent.Status.FAILED, WebhookEvent.Status.UNROUTED],
            bot=bot_from_slug(options["bot"]),
            handler_name=options["handler"],
            since=parse_moment(options["since"], option="--since")
            if options["since"]
            else None,
            until=(
                parse_moment(options["until"], option="--until", end=True)
                if options["until"]
                else None
            ),
            event_ids=options["event"],
        )
        if options["dry_run"]:
            total = 0
            for event in events.iterator(chunk_size=200):
                total += 1
                self.stdout.write(
                    f"would replay event {event.pk} ({event.handler_name}, {event.status})"
                )
            self.stdout.write(f"{total} event(s) would be replayed.")
            return
        outcomes: dict[str, int] = {}
        replayed = webhook_events_replay(events=events.iterator(chunk_size=200))
        for before, run in replayed:
            outcomes[run.outcome] = outcomes.get(run.outcome, 0) + 1
            self.stdout.write(
                f"event {run.event_id} ({run.handler_name}): {before} -> "
                f"{run.event.status} (attempt {run.attempt})"
            )
        total = sum(outcomes.values())
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
        self.stdout.write(
            self.style.SUCCESS(
                f"Replayed {total} event(s){': ' + summary if total else ''}."
            )
        )
        if outcomes.get(HandlerRun.Outcome.FAILED) or outcomes.get(
            HandlerRun.Outcome.UNROUTED
        ):
            raise CommandError(
                "Some replays did not succeed; see the events' runs in the admin."
            )
