import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from handlers.mapping import MappingError, WireMapping
from submissions.fields import StorableCharField, StorableJSONField, StorableTextField

# In its own module to keep this one under the layout's limit; part of this API.
from submissions.job_models import ReplayJob as ReplayJob
from submissions.permissions import (
    ERASE_PERSONAL_DATA_CODENAME,
    EXPORT_FORMSUBMISSION_CODENAME,
    REPLAY_WEBHOOKEVENT_CODENAME,
    VIEW_SENSITIVE_ANSWERS_CODENAME,
)
from submissions.tally_models import (
    DeliveryDayTally as DeliveryDayTally,
)
from submissions.tally_models import (
    FormDayTally as FormDayTally,
)
from submissions.tally_models import (
    QuestionTally as QuestionTally,
)
from submissions.tally_models import (
    TallyDay as TallyDay,
)
from submissions.tally_models import (
    TallyState as TallyState,
)


def generate_secret() -> str:
    """A new bot JWT secret: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


class Bot(models.Model):
    name = StorableCharField(max_length=200)
    slug = models.SlugField(
        max_length=100, unique=True, help_text="The last part of the bot's webhook URL."
    )
    secret = StorableCharField(
        max_length=255,
        default=generate_secret,
        help_text="The JWT secret shown under Settings → Webhook in logicdialog.",
    )
    previous_secret = StorableCharField(
        max_length=255,
        blank=True,
        help_text="Still accepted after a rotation, until the bot uses the new secret.",
    )
    is_active = models.BooleanField(
        default=True, help_text="Inactive bots answer 404 and store nothing."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    wire_mapping = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            "Where this bot's deliveries keep the handler name, ids and answers, "
            "as JSON Pointers; empty: the default spellings (docs/contract.md)."
        ),
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        try:
            WireMapping.from_json(self.wire_mapping)
        except MappingError as exc:
            raise ValidationError({"wire_mapping": str(exc)}) from None

    def mapping(self) -> WireMapping | None:
        """The bot's wire mapping, or None for the defaults (also when the
        stored one is unusable: ``clean`` keeps the admin from saving that)."""
        if not self.wire_mapping:
            return None
        try:
            return WireMapping.from_json(self.wire_mapping)
        except MappingError:
            return None

    def rotate_secret(self, new_secret: str | None = None) -> str:
        """Make ``new_secret`` (a new random one by default) the current secret.

        The current one stays accepted as ``previous_secret`` until logicdialog
        signs with the new one. Sets the fields and returns the new secret;
        the caller saves (``services.bot_rotate_secret`` under a row lock).
        """
        new_secret = new_secret or generate_secret()
        if new_secret != self.secret:
            self.previous_secret, self.secret = self.secret, new_secret
        return new_secret

    def signing_secrets(self) -> list[str]:
        """The secrets a token may be signed with, current first."""
        return [s for s in (self.secret, self.previous_secret) if s]


class WebhookEvent(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"
        UNROUTED = "unrouted", "Unrouted"
        REJECTED = "rejected", "Rejected"
        DUPLICATE = "duplicate", "Duplicate"
        #: Verified, but the bot's wire mapping could not read it: kept whole,
        #: to be read again (``reparse_events``) once the mapping is fixed.
        UNPARSED = "unparsed", "Unparsed"

    # No index of its own: event_bot_idx starts with it (one index entry fewer
    # per delivery, written twice: on insert and on the status update).
    bot = models.ForeignKey(
        Bot, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    received_at = models.DateTimeField(default=timezone.now)
    handler_name = StorableCharField(max_length=255, blank=True)
    status = StorableCharField(max_length=16, choices=Status, default=Status.RECEIVED)
    error_code = StorableCharField(max_length=64, blank=True)
    error_detail = StorableTextField(blank=True)
    traceback = StorableTextField(blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    headers = StorableJSONField(default=dict, blank=True)
    raw_body = models.BinaryField(blank=True, default=b"")
    body_truncated = models.BooleanField(
        default=False, help_text="Only the first bytes of a rejected body are kept."
    )
    body_size = models.PositiveBigIntegerField(
        default=0,
        help_text="Bytes received, or declared by Content-Length when over the limit.",
    )
    body_sha256 = StorableCharField(max_length=64, blank=True)
    payload = StorableJSONField(null=True, blank=True)
    delivery_id = StorableCharField(max_length=255, blank=True)
    # No constraint in the database (here and between the four partitioned
    # tables): on PostgreSQL a foreign key to a partitioned table must name
    # its whole key, (id, received_at), which a Django 5.2 ForeignKey cannot,
    # and dropping a month would check every referencing row. The one write
    # path (services.storage) and tests keep them true (docs/postgresql.md).
    duplicate_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="duplicates",
        db_constraint=False,
        help_text="The first delivery with the same delivery id.",
    )
    conversation_id = StorableCharField(max_length=255, blank=True)
    user_id = StorableCharField(max_length=255, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = StorableJSONField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    token_info = StorableJSONField(
        null=True,
        blank=True,
        help_text="A refused token's header and claims, decoded without "
        "verification (never its signature), to diagnose a connection.",
    )
    claimed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a copy of this delivery took over its run, its first "
        "process having died; a new lease starts then.",
    )
    erased_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the person's data was erased; what is left is an audit stub.",
    )
    erased_by = StorableCharField(max_length=150, blank=True)
    parse_history = StorableJSONField(
        null=True,
        blank=True,
        help_text="Each time the stored body was read again (reparse_events): "
        "when, by whom, with which mapping, what changed (names and counts only).",
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            # Covering status: the overview counts 30 days of deliveries per
            # day and status from this index alone (an index-only scan).
            models.Index(
                fields=["-received_at", "-id"],
                include=["status"],
                name="event_time_idx",
            ),
            models.Index(fields=["bot", "-received_at"], name="event_bot_idx"),
            models.Index(fields=["status", "-received_at"], name="event_status_idx"),
            models.Index(
                fields=["handler_name", "-received_at"],
                name="event_handler_idx",
            ),
            models.Index(fields=["conversation_id"], name="event_conversation_idx"),
            models.Index(fields=["user_id"], name="event_user_idx"),
            models.Index(fields=["delivery_id"], name="event_delivery_idx"),
        ]
        permissions = [(REPLAY_WEBHOOKEVENT_CODENAME, "Can replay webhook events")]
        constraints = [
            # One original per delivery id and bot; duplicates point at it.
            models.UniqueConstraint(
                fields=["bot", "delivery_id"],
                condition=models.Q(duplicate_of__isnull=True)
                & ~models.Q(delivery_id=""),
                name="event_unique_delivery_per_bot",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.handler_name or '(no handler)'} [{self.status}]"


class FormSubmission(models.Model):
    # Kept when old events are purged (purge_events without --include-submissions).
    event = models.OneToOneField(
        WebhookEvent,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="submission",
        db_constraint=False,
    )
    # No index of its own: submission_bot_idx and submission_form_idx lead with it.
    bot = models.ForeignKey(
        Bot, on_delete=models.PROTECT, related_name="submissions", db_index=False
    )
    handler_name = StorableCharField(max_length=255)
    conversation_id = StorableCharField(max_length=255, blank=True)
    user_id = StorableCharField(max_length=255, blank=True)
    submitted_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(
        default=timezone.now,
        editable=False,
        help_text="Its event's received_at: the month it is kept and dropped "
        "with (the partition key on PostgreSQL).",
    )

    class Meta:
        ordering = ["-submitted_at", "-id"]
        permissions = [
            (EXPORT_FORMSUBMISSION_CODENAME, "Can export form submissions to CSV"),
            (VIEW_SENSITIVE_ANSWERS_CODENAME, "Can see sensitive answers unmasked"),
            (ERASE_PERSONAL_DATA_CODENAME, "Can erase a person's data"),
        ]
        indexes = [
            # Covering the form: the overview counts 30 days of submissions
            # per day and form from this index alone.
            models.Index(
                fields=["-submitted_at", "-id"],
                include=["bot", "handler_name"],
                name="submission_time_idx",
            ),
            models.Index(fields=["bot", "-submitted_at"], name="submission_bot_idx"),
            # One form newest first: its table's pages, and its submissions
            # for the column query, without reading the table.
            models.Index(
                fields=["bot", "handler_name", "-submitted_at", "-id"],
                name="submission_form_idx",
            ),
            models.Index(
                fields=["handler_name", "-submitted_at"],
                name="submission_handler_idx",
            ),
            models.Index(
                fields=["conversation_id"], name="submission_conversation_idx"
            ),
            models.Index(fields=["user_id"], name="submission_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.handler_name} #{self.pk}"


class FormAnswer(models.Model):
    # Indexed by answer_submission_key_idx (and answer_position_unique).
    submission = models.ForeignKey(
        FormSubmission,
        on_delete=models.CASCADE,
        related_name="answers",
        db_index=False,
        db_constraint=False,
    )
    position = models.PositiveIntegerField()
    key = StorableCharField(max_length=255)
    label = StorableTextField(blank=True)
    input_type = StorableCharField(max_length=64, blank=True)
    value = StorableJSONField(null=True, blank=True)
    value_text = StorableTextField(
        blank=True, help_text="The value as text, for search."
    )
    received_at = models.DateTimeField(
        default=timezone.now,
        editable=False,
        help_text="Its event's received_at (the partition key on PostgreSQL).",
    )

    class Meta:
        ordering = ["submission", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["submission", "position"], name="answer_position_unique"
            ),
        ]
        indexes = [
            # The keys of a form's answers without reading the table: the
            # column query of its table and of the CSV (index-only scans).
            models.Index(
                fields=["submission", "key"], name="answer_submission_key_idx"
            ),
        ]

    def __str__(self) -> str:
        # Never the value: the admin lists answers by name (a delete's
        # confirmation, say) to staff who may see them masked.
        return f"Answer to {self.key}"


class HandlerRun(models.Model):
    """One run of a handler for an event: the delivery itself, a replay, or follow-up work."""

    class Trigger(models.TextChoices):
        DELIVERY = "delivery", "Delivery"
        REPLAY = "replay", "Replay"
        FOLLOW_UP = "follow_up", "Follow-up task"

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        UNROUTED = "unrouted", "Unrouted"
        RETRYING = "retrying", "Failed, will retry"
        DEAD = "dead", "Failed permanently"
        TIMED_OUT = "timed_out", "Timed out (fallback reply sent)"

    # No index of its own: run_attempt_unique (event, attempt) starts with it.
    event = models.ForeignKey(
        WebhookEvent,
        on_delete=models.CASCADE,
        related_name="runs",
        db_index=False,
        db_constraint=False,
    )
    received_at = models.DateTimeField(
        default=timezone.now,
        editable=False,
        help_text="Its event's received_at (the partition key on PostgreSQL).",
    )
    attempt = models.PositiveIntegerField()
    trigger = StorableCharField(
        max_length=16, choices=Trigger, default=Trigger.DELIVERY
    )
    handler_name = StorableCharField(max_length=255)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_ms = models.FloatField()
    outcome = StorableCharField(max_length=16, choices=Outcome)
    error_type = StorableCharField(max_length=255, blank=True)
    message = StorableTextField(blank=True)
    traceback = StorableTextField(blank=True)
    reply = StorableJSONField(null=True, blank=True)

    class Meta:
        ordering = ["event", "attempt"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "attempt"], name="run_attempt_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["outcome", "-started_at"], name="run_outcome_idx"),
            models.Index(fields=["-started_at", "-id"], name="run_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.handler_name} attempt {self.attempt} [{self.outcome}]"


class ErasureLog(models.Model):
    """One erasure request served: who, when, whose data (as a keyed hash), how much."""

    class Selector(models.TextChoices):
        USER_ID = "user_id", "User id"
        CONVERSATION_ID = "conversation_id", "Conversation id"

    requested_at = models.DateTimeField(default=timezone.now)
    requested_by = StorableCharField(max_length=150)
    source = StorableCharField(max_length=16, help_text="command or admin")
    selector = StorableCharField(max_length=16, choices=Selector)
    selector_hash = StorableCharField(
        max_length=64,
        help_text="HMAC-SHA256 of the id (keyed with ERASURE_HASH_KEY): it matches "
        "a later request for the same id without keeping the id.",
    )
    bot = models.ForeignKey(Bot, null=True, blank=True, on_delete=models.SET_NULL)
    submissions = models.PositiveIntegerField(default=0)
    answers = models.PositiveIntegerField(default=0)
    events = models.PositiveIntegerField(default=0)
    runs = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"Erasure #{self.pk} by {self.requested_by}"


class RetentionPolicy(models.Model):
    """How long one form's submissions and their events are kept (default: forever)."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="retention")
    handler_name = StorableCharField(
        max_length=255, help_text="The form's handler name, as deliveries name it."
    )
    keep_days = models.PositiveIntegerField(
        help_text="Submissions and their events older than this many days are deleted."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "retention policies"
        ordering = ["bot__name", "handler_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "handler_name"], name="retention_one_per_form"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bot}: {self.handler_name}, {self.keep_days} days"
