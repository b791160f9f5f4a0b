"""Tallies: per-day counts the console reads instead of every row (re-exported by ``models``).

``submissions.services.tallies`` keeps them; ``submissions.selectors.tallies``
reads them with what they do not cover yet. They are a cache: every page
that reads them is exact without them, only slower (docs/retention.md).
Apart from ``models.py`` only to keep that module under the layout's limit.
"""

from django.db import models

from submissions.fields import StorableCharField, StorableTextField


class TallyState(models.Model):
    """The one row saying how far the tallies go (primary key 1)."""

    submissions_up_to = models.BigIntegerField(
        default=0, help_text="Every submission with an id up to this one is tallied."
    )
    events_up_to = models.BigIntegerField(
        default=0, help_text="Every event with an id up to this one is tallied."
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text="The time zone the days are in; other days are not read.",
    )
    counted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "tally state"

    def __str__(self) -> str:
        return f"tallies up to submission {self.submissions_up_to}"


class FormDayTally(models.Model):
    """One form's submissions on one day (``TallyState.time_zone``)."""

    bot = models.ForeignKey(
        "submissions.Bot", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    handler_name = StorableCharField(max_length=255)
    day = models.DateField()
    submissions = models.PositiveIntegerField()
    last_at = models.DateTimeField()
    last_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "handler_name", "day"], name="form_day_tally_unique"
            )
        ]
        indexes = [models.Index(fields=["day"], name="form_day_tally_day_idx")]

    def __str__(self) -> str:
        return f"{self.handler_name} {self.day}: {self.submissions}"


class DeliveryDayTally(models.Model):
    """Deliveries of one status received on one day."""

    day = models.DateField()
    status = StorableCharField(max_length=16)
    deliveries = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "status"], name="delivery_day_tally_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.status} {self.day}: {self.deliveries}"


class QuestionTally(models.Model):
    """A question a form has asked: where it was first and last seen, its latest wording.

    A place is (submitted_at, submission id, position), the order a form's
    columns come in.
    """

    bot = models.ForeignKey(
        "submissions.Bot", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    handler_name = StorableCharField(max_length=255)
    key = StorableCharField(max_length=255)
    first_at = models.DateTimeField()
    first_id = models.BigIntegerField()
    first_position = models.PositiveIntegerField()
    last_at = models.DateTimeField()
    last_id = models.BigIntegerField()
    last_position = models.PositiveIntegerField()
    label = StorableTextField(blank=True)
    input_type = StorableCharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "handler_name", "key"], name="question_tally_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.handler_name}.{self.key}"


class TallyDay(models.Model):
    """A day whose rows changed after they were tallied: read live until recounted."""

    day = models.DateField(unique=True)
    marked_at = models.DateTimeField()
    #: One more at each mark, counted by the database: a recount removes the
    #: mark only if none came since it read it (clocks can disagree).
    generation = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.day} (marked {self.marked_at:%Y-%m-%d %H:%M})"
