from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from submissions.management.options import utc_date
from submissions.models import FormSubmission, WebhookEvent
from submissions.retention import retention_schedule_daily
from submissions.services.retention import retention_apply, webhook_events_purge
from submissions.services.storage import MAX_BATCH


class Command(BaseCommand):
    help = (
        "Delete webhook events (raw bodies, headers, runs) older than --older-than days: "
        "on PostgreSQL each whole month is dropped and the rest deleted in batches, "
        "elsewhere everything in batches. Form submissions are kept unless --include-submissions. With "
        "--policies, apply each form's retention policy instead (its submissions and "
        "their events); --daily queues that to run every day in the task worker."
    )

    def add_arguments(self, parser: Any) -> None:
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--older-than", type=int, metavar="DAYS")
        what.add_argument(
            "--before",
            type=utc_date,
            metavar="YYYY-MM-DD",
            help="Delete what was received before this date (midnight UTC): "
            "a month's first day drops whole months and deletes nothing row-wise.",
        )
        what.add_argument(
            "--policies",
            action="store_true",
            help="Apply the retention policies set per form in the admin.",
        )
        parser.add_argument(
            "--daily",
            action="store_true",
            help="With --policies: queue the daily run in the task worker and return.",
        )
        parser.add_argument(
            "--include-submissions",
            action="store_true",
            help="Also delete form submissions (and answers) older than DAYS.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help=f"Rows per batch of a row-wise delete, 1 to {MAX_BATCH}.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count only; delete nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["batch_size"] <= MAX_BATCH:
            raise CommandError(f"--batch-size must be 1 to {MAX_BATCH}.")
        if options["daily"] and not options["policies"]:
            raise CommandError("--daily goes with --policies.")
        if options["policies"]:
            self.apply_policies(**options)
            return
        before = options["before"]
        if before is None:
            days = options["older_than"]
            if days < 0:
                raise CommandError("--older-than takes a number of days, 0 or more.")
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
        for name, rows in result.dropped:
            self.stdout.write(f"Dropped partition {name} ({rows} row(s)).")
        if result.dropped or result.unlinked:
            self.stdout.write(
                f"Deleted {result.deleted} row(s) in batches; unlinked "
                f"{result.unlinked} kept submission(s) from their dropped events."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {result.events} event(s) and {result.submissions} submission(s) "
                f"received before {before:%Y-%m-%d %H:%M} UTC."
            )
        )

    def apply_policies(self, **options: Any) -> None:
        if options["daily"]:
            queued = retention_schedule_daily()
            self.stdout.write(
                "Queued the daily retention run; `manage.py db_worker` runs it."
                if queued
                else "The daily retention run is already queued."
            )
            return
        dry_run = options["dry_run"]
        results = retention_apply(dry_run=dry_run, batch_size=options["batch_size"])
        if not results:
            self.stdout.write("No retention policy is set: everything is kept.")
        verb = "Would delete" if dry_run else "Deleted"
        for result in results:
            self.stdout.write(
                f"{result.policy}: {verb.lower()} {result.submissions} submission(s) "
                f"and {result.events} event(s) received before "
                f"{result.before:%Y-%m-%d %H:%M} UTC."
            )
        total_s = sum(r.submissions for r in results)
        total_e = sum(r.events for r in results)
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {total_s} submission(s) and {total_e} event(s)."
            )
        )
