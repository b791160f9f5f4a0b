from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from submissions.partitions import partitions_schedule_daily
from submissions.services import partitions


class Command(BaseCommand):
    help = (
        "PostgreSQL's monthly partitions of events, submissions, answers and runs: "
        "--list them, or --ensure there are --months ahead of the current one "
        "(default 3; run daily, or --daily to queue that in the task worker)."
    )

    def add_arguments(self, parser: Any) -> None:
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--list", action="store_true", help="List the partitions.")
        what.add_argument(
            "--ensure", action="store_true", help="Make the months ahead."
        )
        parser.add_argument("--months", type=int, default=partitions.MONTHS_AHEAD)
        parser.add_argument(
            "--since",
            metavar="YYYY-MM",
            help="With --ensure: also make the months back to this one "
            "(out of <table>_before, its rows moved into them).",
        )
        parser.add_argument(
            "--daily",
            action="store_true",
            help="With --ensure: queue the daily run in the task worker and return.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not partitions.is_partitioned():
            self.stdout.write(
                f"The {connections['default'].vendor} database keeps plain tables: "
                "no partitions to list or make (PostgreSQL only)."
            )
            return
        if options["daily"] and not options["ensure"]:
            raise CommandError("--daily goes with --ensure.")
        if options["ensure"]:
            if not 1 <= options["months"] <= 24:
                raise CommandError("--months takes 1 to 24.")
            if options["daily"]:
                queued = partitions_schedule_daily()
                self.stdout.write(
                    "Queued the daily partitions run; `manage.py db_worker` runs it."
                    if queued
                    else "The daily partitions run is already queued, or the task "
                    "backend cannot run a task later: schedule --ensure in cron."
                )
                return
            since = None
            if options["since"]:
                try:
                    since = datetime.strptime(options["since"], "%Y-%m").replace(
                        tzinfo=UTC
                    )
                except ValueError:
                    raise CommandError(
                        f"--since takes a month as YYYY-MM, not {options['since']!r}."
                    ) from None
            made = partitions.partitions_ensure(months=options["months"], since=since)
            for name in made:
                self.stdout.write(f"Made {name}.")
            self.stdout.write(
                self.style.SUCCESS(
                    f"{len(made)} partition(s) made; "
                    f"{partitions.months_ahead()} month(s) ahead."
                )
            )
            return
        for table in partitions.TABLES:
            self.stdout.write(f"{table}:")
            for part in partitions.partitions_list(table):
                lower = f"{part.lower:%Y-%m-%d}" if part.lower else "MINVALUE"
                upper = f"{part.upper:%Y-%m-%d}" if part.upper else "MAXVALUE"
                rows = "not analysed" if part.rows < 0 else f"~{part.rows} rows"
                pending = " (detach pending)" if part.detach_pending else ""
                self.stdout.write(f"  {part.name}  [{lower}, {upper})  {rows}{pending}")
        self.stdout.write(f"{partitions.months_ahead()} month(s) ahead.")
