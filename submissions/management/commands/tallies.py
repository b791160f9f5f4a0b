import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from submissions.services.tallies import tallies_count, tallies_rebuild
from submissions.tallies import EVERY, tallies_schedule


class Command(BaseCommand):
    help = (
        "The console's per-day tallies (docs/retention.md): --count what is new "
        "and recount the days that changed (every few minutes: cron, or --often "
        "to queue that in the task worker), or --rebuild them from every row."
    )

    def add_arguments(self, parser: Any) -> None:
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument(
            "--count", action="store_true", help="Add new rows, recount changed days."
        )
        what.add_argument(
            "--rebuild",
            action="store_true",
            help="Forget the tallies and count every row again.",
        )
        parser.add_argument(
            "--often",
            action="store_true",
            help=f"With --count: queue a run every {EVERY.seconds // 60} minutes "
            "in the task worker and return.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["often"]:
            if not options["count"]:
                raise CommandError("--often goes with --count.")
            self.stdout.write(
                "Queued the tallies run; `manage.py db_worker` runs it and the next."
                if tallies_schedule()
                else "The tallies run is already queued, or the task backend cannot "
                "run a task later: schedule --count in cron."
            )
            return
        started = time.perf_counter()
        if options["rebuild"]:
            tallies_rebuild()
        report = tallies_count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Tallied {report.submissions} submission(s) and {report.events} "
                f"event(s), recounted {report.days_recounted} day(s) in "
                f"{time.perf_counter() - started:.1f} s"
                + (
                    " (the time zone changed: started again)."
                    if report.started_again
                    else "."
                )
            )
        )
