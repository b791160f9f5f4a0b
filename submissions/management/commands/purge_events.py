from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from submissions.models import FormSubmission, WebhookEvent
from submissions.services import webhook_events_purge


class Command(BaseCommand):
    help = (
        "Delete webhook events (raw bodies, headers, runs) older than --older-than days, "
        "in batches. Form submissions are kept unless --include-submissions."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")
        parser.add_argument(
            "--include-submissions",
            action="store_true",
            help="Also delete form submissions (and answers) older than DAYS.",
        )
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument(
            "--dry-run", action="store_true", help="Count only; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than"]
        if days < 0:
            raise CommandError("--older-than takes a number of days, 0 or more.")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        before = timezone.now() - timedelta(days=days)
        include = options["include_submissions"]
        if options["dry_run"]:
            events = WebhookEvent.objects.filter(received_at__lt=before).count()
            submissions = (
                FormSubmission.objects.filter(submitted_at__lt=before).count()
                if include
                else 0
            )
            self.stdout.write(
                f"Would delete {events} event(s) and {submissions} submission(s) "
                f"received before {before:%Y-%m-%d %H:%M} UTC."
            )
            return
        result = webhook_events_purge(
            before=before, include_submissions=include, batch_size=options["batch_size"]
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {result.events} event(s) and {result.submissions} submission(s) "
                f"received before {before:%Y-%m-%d %H:%M} UTC."
            )
        )
