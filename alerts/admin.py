"""Alert rules with their recipients; the rate limiter's state and every sent alert, read-only."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from alerts.models import AlertRecipient, AlertRule, AlertState, SentAlert
from submissions.admin.common import ReadOnlyAdminMixin, preformatted, pretty_json


def sent_alerts_link(rule: AlertRule, text: str) -> str:
    url = reverse("admin:alerts_sentalert_changelist")
    return format_html(
        '<a href="{}?{}">{}</a>', url, urlencode({"rule__id__exact": rule.pk}), text
    )


class AlertRecipientInline(admin.TabularInline):
    model = AlertRecipient
    extra = 1
    fields = ["channel", "target"]
    verbose_name = "recipient"
    verbose_name_plural = "recipients"


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "bot",
        "handler_shown",
        "window_shown",
        "threshold_shown",
        "enabled",
        "daily_digest",
        "recipient_count",
        "sent",
    ]
    list_filter = ["kind", "enabled", "bot"]
    search_fields = ["name", "handler_name"]
    list_select_related = ["bot"]
    inlines = [AlertRecipientInline]
    fieldsets = [
        (None, {"fields": ["name", "kind", "enabled"]}),
        ("Which deliveries", {"fields": ["bot", "handler_name"]}),
        ("How often", {"fields": ["window_minutes", "threshold", "daily_digest"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AlertRule]:
        return super().get_queryset(request).annotate(n_recipients=Count("recipients"))

    @admin.display(description="handler")
    def handler_shown(self, rule: AlertRule) -> str:
        return rule.handler_name or "(any)"

    @admin.display(description="window")
    def window_shown(self, rule: AlertRule) -> str:
        return f"{int(rule.window.total_seconds() // 60)} min"

    @admin.display(description="threshold")
    def threshold_shown(self, rule: AlertRule) -> int:
        return rule.effective_threshold

    @admin.display(description="recipients")
    def recipient_count(self, rule: AlertRule) -> int:
        return rule.n_recipients

    @admin.display(description="sent alerts")
    def sent(self, rule: AlertRule) -> str:
        return sent_alerts_link(rule, "View")


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Per rule and key, the open window; deleting a row lets the next incident send."""

    list_display = [
        "key",
        "rule",
        "window_started_at",
        "last_sent_at",
        "pending_count",
        "last_incident_at",
    ]
    list_filter = ["rule"]
    search_fields = ["key"]
    list_select_related = ["rule"]
    ordering = ["-last_sent_at", "-id"]


@admin.register(SentAlert)
class SentAlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "subject",
        "rule",
        "channel",
        "recipient_shown",
        "status",
        "attempts",
        "incident_count",
        "admin_link",
    ]
    list_filter = [
        "status",
        "channel",
        "kind",
        "rule",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["=key", "subject"]
    search_help_text = (
        "A key (e.g. handler_failing:demo:save-form) or words of the subject."
    )
    list_select_related = ["rule"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "rule",
        "kind",
        "key",
        "channel",
        "recipient_shown",
        "status",
        "attempts",
        "sent_at",
        "error",
        "incident_count",
        "first_incident_at",
        "last_incident_at",
        "admin_link",
        "subject",
        "body_shown",
        "payload_shown",
        "attempts_shown",
    ]
    readonly_fields = fields

    @admin.display(description="admin link")
    def admin_link(self, alert: SentAlert) -> str:
        if not alert.url:
            return "-"
        return format_html('<a href="{}">Open the list</a>', alert.url)

    @admin.display(description="body")
    def body_shown(self, alert: SentAlert) -> str:
        return preformatted(alert.body)

    @admin.display(description="webhook payload")
    def payload_shown(self, alert: SentAlert) -> str:
        return pretty_json(alert.payload)

    @admin.display(description="attempts log")
    def attempts_shown(self, alert: SentAlert) -> str:
        return pretty_json(alert.attempt_log)
