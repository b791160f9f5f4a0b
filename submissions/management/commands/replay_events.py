import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from submissions.management.options import bot_from_slug, parse_moment
from submissions.models import ReplayJob, WebhookEvent
from submissions.replay import REPLAYABLE
from submissions.replay_jobs import (
    OPEN,
    replay_job_cancel,
    replay_job_create,
    replay_job_execute,
    replay_job_resume,
)
from submissions.selectors.events import ReplayFilter, replay_estimate

#: Seconds between two looks at a job followed with --wait.
POLL_SECONDS = 2.0


def progress(job: ReplayJob) -> str:
    line = (
        f"Replay job #{job.pk} {job.status}: {job.done} of {job.estimate} "
        f"({job.percent}%), {job.succeeded} succeeded, {job.failed} failed"
    )
    return line + (f"; stopped by {job.error}" if job.error else "")


class Command(BaseCommand):
    help = (
        "Run stored events again through today's handler code (e.g. failed ones after "
        "a fix, unrouted ones once their handler exists), as a background job run by "
        "`manage.py db_worker`: it prints how many events the filter selects, asks, "
        "then queues the job. Each replay adds a handler run; none creates a second "
        "submission."
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
        parser.add_argument(
            "--yes", action="store_true", help="Queue the job without asking."
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="Follow the job, printing its progress, until it ends.",
        )
        parser.add_argument(
            "--here",
            action="store_true",
            help="Run the job in this process, printing its progress (no task "
            "worker needed: one machine, `make run`).",
        )
        parser.add_argument(
            "--job-status",
            type=int,
            metavar="JOB_ID",
            help="Print a job's progress and stop (add --wait to follow it).",
        )
        parser.add_argument(
            "--cancel",
            type=int,
            metavar="JOB_ID",
            help="Cancel a job; it stops before its next batch.",
        )
        parser.add_argument(
            "--resume",
            type=int,
            metavar="JOB_ID",
            help="Go on with a job left running by a worker that died, after "
            "its last recorded batch (queued again, or run --here). Only "
            "once that worker is gone: two workers on one job replay twice.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["cancel"] is not None:
            job = self.job(options["cancel"])
            if not replay_job_cancel(job_id=job.pk):
                raise CommandError(f"Replay job #{job.pk} had already {job.status}.")
            self.stdout.write(f"Replay job #{job.pk} cancelled.")
            return
        if options["resume"] is not None:
            self.resume(self.job(options["resume"]), here=options["here"])
            return
        if options["job_status"] is not None:
            job = self.job(options["job_status"])
            self.follow(job) if options["wait"] else self.stdout.write(progress(job))
            return
        bot = bot_from_slug(options["bot"])
        selected = ReplayFilter(
            statuses=options["status"]
            or [WebhookEvent.Status.FAILED, WebhookEvent.Status.UNROUTED],
            bot_id=bot.pk if bot else None,
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
        counted = replay_estimate(selected=selected)
        self.stdout.write(f"{counted[0]} event(s) selected: {selected.describe()}.")
        if options["dry_run"]:
            events = selected.events().filter(pk__lte=counted[1]).order_by("pk")
            for event in events.iterator(chunk_size=200):
                self.stdout.write(
                    f"would replay event {event.pk} ({event.handler_name}, {event.status})"
                )
            self.stdout.write(f"{counted[0]} event(s) would be replayed.")
            return
        if not counted[0]:
            self.stdout.write("Nothing to replay.")
            return
        if not options["yes"]:
            if not sys.stdin.isatty():
                raise CommandError("Add --yes to replay without a terminal to confirm.")
            answer = input(f"Replay {counted[0]} event(s) in a background job? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("Nothing queued.")
        job = replay_job_create(
            selected=selected,
            created_by=None,
            source="command",
            counted=counted,
            queue=not options["here"],
        )
        if options["here"]:
            self.stdout.write(
                f"Running replay job #{job.pk} ({job.estimate} event(s)) here."
            )
            replay_job_execute(job_id=job.pk)
            self.follow(job)
            return
        self.stdout.write(
            f"Queued replay job #{job.pk} ({job.estimate} event(s)); `manage.py "
            f"db_worker` runs it. Follow it with --job-status {job.pk} --wait, "
            f"stop it with --cancel {job.pk}."
        )
        if options["wait"]:
            self.follow(job)

    def resume(self, job: ReplayJob, *, here: bool) -> None:
        if job.status not in (ReplayJob.Status.QUEUED, ReplayJob.Status.RUNNING):
            raise CommandError(
                f"Replay job #{job.pk} had already {job.status}: nothing to resume."
            )
        if here:
            self.stdout.write(f"Resuming replay job #{job.pk} here.")
            replay_job_execute(job_id=job.pk)
            self.follow(job)
            return
        replay_job_resume(job=job)
        self.stdout.write(
            f"Queued replay job #{job.pk} again, after event #{job.last_event_id}; "
            "`manage.py db_worker` runs it."
        )

    def job(self, job_id: int) -> ReplayJob:
        job = ReplayJob.objects.filter(pk=job_id).first()
        if job is None:
            raise CommandError(f"No replay job #{job_id}.")
        return job

    def follow(self, job: ReplayJob) -> None:
        shown = ""
        while True:
            job.refresh_from_db()
            line = progress(job)
            if line != shown:
                self.stdout.write(line)
                shown = line
            if job.status not in OPEN:
                break
            time.sleep(POLL_SECONDS)
        if job.failed or job.error:
            raise CommandError(
                "Some replays did not succeed; see the events' runs in the admin."
            )
        if job.status == ReplayJob.Status.FINISHED:
            self.stdout.write(self.style.SUCCESS(f"Replayed {job.done} event(s)."))
