from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from alerts.incidents import digest_send


def iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--date takes a day as YYYY-MM-DD, not {value!r}."
        ) from None


class Command(BaseCommand):
    help = (
        "Queue the daily digest of new form submissions for every enabled "
        "new-submission rule with 'daily digest' ticked: yesterday's counts per "
        "form, one message per rule and recipient, sent by the task worker "
        "(manage.py db_worker). Run it once a day, from cron or a scheduler; a "
        "second run for the same day queues nothing."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--date",
            metavar="YYYY-MM-DD",
            help="The day to report (in TIME_ZONE); yesterday by default.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        day = iso_date(options["date"]) if options["date"] else None
        queued = digest_send(day=day)
        rules = len({alert.rule_id for alert in queued})
        self.stdout.write(
            self.style.SUCCESS(
                f"Queued {len(queued)} digest message(s) for {rules} rule(s); "
                "the task worker sends them."
            )
        )
