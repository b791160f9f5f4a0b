"""Alert rules and their recipients, the rate-limiting state, and every alert sent."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import models
from django.utils import timezone

from alerts.conf import alert_settings
from alerts.destinations import webhook_url_problem
from submissions.models import Bot


class AlertKind(models.TextChoices):
    HANDLER_FAILING = "handler_failing", "A handler fails"
    UNKNOWN_HANDLER = "unknown_handler", "A delivery names no known handler"
    FOLLOW_UP_DEAD = "follow_up_dead", "A follow-up fails for good"
    REJECTED_TOKENS = "rejected_tokens", "A burst of rejected tokens"
    NEW_SUBMISSION = "new_submission", "A new form submission"


class AlertRule(models.Model):
    """What to watch (kind, optionally one bot and one handler) and how often to say so."""

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=AlertKind)
    bot = models.ForeignKey(
        Bot,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_rules",
        help_text="Blank: every bot.",
    )
    handler_name = models.CharField(
        max_length=255,
        blank=True,
        help_text="Blank: every handler (for new submissions: every form).",
    )
    window_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=(
            "At most one alert per window for the same bot and handler; the next "
            "says how many happened since. Blank: ALERTS_WINDOW_MINUTES (15), or "
            "ALERTS_REJECTED_TOKENS_WINDOW_MINUTES (5) for rejected tokens."
        ),
    )
    threshold = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=(
            "Alert once this many happen within the window. Blank: 1, or "
            "ALERTS_REJECTED_TOKENS_THRESHOLD (10) for rejected tokens."
        ),
    )
    enabled = models.BooleanField(default=True)
    daily_digest = models.BooleanField(
        default=False,
        help_text=(
            "New submissions only: one message a day with yesterday's counts per "
            "form (manage.py send_alert_digest) instead of an alert per window."
        ),
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(window_minutes__isnull=True)
                | models.Q(window_minutes__gt=0),
                name="alert_rule_window_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(threshold__isnull=True) | models.Q(threshold__gt=0),
                name="alert_rule_threshold_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(daily_digest=False)
                | models.Q(kind=AlertKind.NEW_SUBMISSION),
                name="alert_rule_digest_new_submission_only",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.daily_digest and self.kind != AlertKind.NEW_SUBMISSION:
            raise ValidationError(
                {"daily_digest": "Only new-submission rules can send a daily digest."}
            )
        if self.kind == AlertKind.REJECTED_TOKENS and self.handler_name:
            raise ValidationError(
                {
                    "handler_name": "A rejected delivery is refused before its handler "
                    "name is read: leave this blank for rejected tokens."
                }
            )

    @property
    def window(self) -> timedelta:
        if self.window_minutes:
            return timedelta(minutes=self.window_minutes)
        conf = alert_settings()
        if self.kind == AlertKind.REJECTED_TOKENS:
            return conf.rejected_tokens_window
        return conf.window

    @property
    def effective_threshold(self) -> int:
        if self.threshold:
            return self.threshold
        if self.kind == AlertKind.REJECTED_TOKENS:
            return alert_settings().rejected_tokens_threshold
        return 1


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook (Slack, Teams, ...)"


class AlertRecipient(models.Model):
    rule = models.ForeignKey(
        AlertRule, on_delete=models.CASCADE, related_name="recipients"
    )
    channel = models.CharField(max_length=16, choices=Channel, default=Channel.EMAIL)
    target = models.CharField(
        max_length=2000,
        help_text=(
            "An email address, or an incoming-webhook URL (http or https) that "
            "takes a JSON POST, such as Slack's or Teams'. Webhooks reach public "
            "addresses only, unless ALERTS_WEBHOOK_ALLOWED_NETWORKS allows more."
        ),
    )

    class Meta:
        ordering = ["rule", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "channel", "target"], name="alert_recipient_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.shown

    def clean(self) -> None:
        self.target = self.target.strip()
        problem = None
        if self.channel == Channel.WEBHOOK:
            problem = webhook_url_problem(self.target)
            # An address in any spelling (2130706433, 0x7f.1) is named as such,
            # before the URL validator's plainer "Enter a valid URL.".
            if problem and self.target.lower().startswith(("http://", "https://")):
                raise ValidationError({"target": problem})
        try:
            if self.channel == Channel.EMAIL:
                EmailValidator()(self.target)
            else:
                URLValidator(schemes=["http", "https"])(self.target)
        except ValidationError as exc:
            raise ValidationError({"target": exc.messages}) from None
        if problem:
            raise ValidationError({"target": problem})

    @property
    def shown(self) -> str:
        """The target as it may be shown in records: a webhook URL's path is its secret."""
        if self.channel == Channel.EMAIL:
            return self.target
        return webhook_shown(self.target)


def webhook_shown(url: str) -> str:
    """``https://hooks.slack.com/…`` from a URL whose path or query carries its key."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/…"


class AlertState(models.Model):
    """Per rule and key (e.g. one bot's handler): the open window and what it held back."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="states")
    key = models.CharField(max_length=512)
    window_started_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last alert's incident happened."
    )
    last_sent_at = models.DateTimeField(null=True, blank=True)
    pending_count = models.PositiveIntegerField(
        default=0, help_text="Incidents since the last alert, held back by the window."
    )
    first_pending_at = models.DateTimeField(null=True, blank=True)
    last_incident_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rule", "key"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "key"], name="alert_state_unique"),
        ]

    def __str__(self) -> str:
        return self.key


class SentAlert(models.Model):
    """One message to one recipient, and every attempt to deliver it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Queued"
        RETRYING = "retrying", "Failed, will retry"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    rule = models.ForeignKey(
        AlertRule,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sent_alerts",
    )
    recipient = models.ForeignKey(
        AlertRecipient,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sent_alerts",
    )
    kind = models.CharField(max_length=32, choices=AlertKind)
    key = models.CharField(max_length=512)
    channel = models.CharField(max_length=16, choices=Channel)
    recipient_shown = models.CharField(
        "recipient", max_length=2000, help_text="A webhook URL without its path."
    )
    subject = models.CharField(max_length=255)
    body = models.TextField()
    payload = models.JSONField(null=True, blank=True)
    url = models.URLField(
        "admin link", max_length=2000, blank=True, help_text="The filtered admin list."
    )
    incident_count = models.PositiveIntegerField(
        default=1, help_text="Incidents this alert reports, since the previous one."
    )
    first_incident_at = models.DateTimeField(null=True, blank=True)
    last_incident_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="The last attempt's failure.")
    attempt_log = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="sent_alert_time_idx"),
            models.Index(
                fields=["status", "-created_at"], name="sent_alert_status_idx"
            ),
            models.Index(fields=["rule", "-created_at"], name="sent_alert_rule_idx"),
            models.Index(fields=["key", "-created_at"], name="sent_alert_key_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} → {self.recipient_shown}"
