"""Background jobs' records: a bulk replay (``ReplayJob``), re-exported by ``models``.

Apart from ``models.py`` only to keep that module under the layout's limit.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from submissions.fields import StorableCharField, StorableTextField


class ReplayJob(models.Model):
    """One bulk replay run by the task worker (``submissions.replay_jobs``)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLED = "cancelled", "Cancelled"
        FINISHED = "finished", "Finished"

    filter = models.JSONField(
        help_text="What it replays: statuses, bot, handler, since/until, event ids."
    )
    max_event_id = models.BigIntegerField(
        default=0, help_text="The last event it may replay: none that came later."
    )
    estimate = models.PositiveIntegerField(
        default=0, help_text="Events the filter selected when the job was made."
    )
    done = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    last_event_id = models.BigIntegerField(
        default=0, help_text="The last event replayed: the next batch starts after it."
    )
    status = StorableCharField(max_length=16, choices=Status, default=Status.QUEUED)
    error = StorableTextField(blank=True, help_text="Why the job stopped early.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    source = StorableCharField(max_length=16, help_text="command or admin")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Replay job #{self.pk} [{self.status}]"

    @property
    def percent(self) -> int:
        if not self.estimate:
            return 100 if self.status == self.Status.FINISHED else 0
        return min(100, round(100 * self.done / self.estimate))
