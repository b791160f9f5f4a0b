from django.contrib import admin

from submissions.models import Bot, FormAnswer, FormSubmission, WebhookEvent


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "created_at"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = [
        "received_at",
        "bot",
        "handler_name",
        "status",
        "conversation_id",
        "duration_ms",
    ]
    list_filter = ["status", "bot"]
    list_select_related = ["bot"]
    exclude = ["raw_body"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class FormAnswerInline(admin.TabularInline):
    model = FormAnswer
    extra = 0
    fields = ["position", "key", "label", "input_type", "value_text"]
    readonly_fields = fields
    can_delete = False


@admin.register(FormSubmission)
class FormSubmissionAdmin(admin.ModelAdmin):
    list_display = ["submitted_at", "bot", "handler_name", "conversation_id", "user_id"]
    list_filter = ["bot", "handler_name"]
    list_select_related = ["bot"]
    inlines = [FormAnswerInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
