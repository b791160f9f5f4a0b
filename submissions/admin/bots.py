"""Bots: their webhook URLs and secrets (set, rotated, never shown in lists)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from handlers.wire import WireError, field_spellings, parse_json
from submissions.admin.common import CheckedActionsMixin, pretty_json
from submissions.models import Bot, WebhookEvent, generate_secret
from submissions.selectors import bot_recent_deliveries
from submissions.services import bot_rotate_secret


class BotAdminForm(forms.ModelForm):
    secret = forms.CharField(
        label="JWT secret",
        required=False,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password"}
        ),
        help_text=(
            "Paste the secret shown under Settings → Webhook in logicdialog. Leave "
            "empty to keep the current secret (or, for a new bot, to generate one). "
            "A replaced secret stays accepted as the previous secret."
        ),
    )

    class Meta:
        model = Bot
        fields = ["name", "slug", "is_active", "secret"]

    def clean_secret(self) -> str:
        entered = self.cleaned_data["secret"]
        return entered or self.instance.secret or generate_secret()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        new_secret = cleaned.get("secret")
        if self.instance.pk and new_secret:
            # Deliveries signed with the old secret keep working until logicdialog
            # uses the new one.
            self.instance.rotate_secret(new_secret)
        return cleaned


@admin.register(Bot)
class BotAdmin(CheckedActionsMixin, admin.ModelAdmin):
    form = BotAdminForm
    list_display = ["name", "slug", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    sortable_by = ["name", "slug", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["rotate_secret"]
    change_form_template = "admin/submissions/bot/change_form.html"

    class Media:
        js = ["submissions/admin/copy.js"]

    @staticmethod
    def webhook_url(request: HttpRequest, bot: Bot) -> str:
        return request.build_absolute_uri(reverse("webhook", args=[bot.slug]))

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        @admin.display(description="webhook URL")
        def webhook_url(bot: Bot) -> str:
            return self.webhook_url(request, bot)

        return [*self.list_display, webhook_url]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        bot = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if bot is not None and request.user.has_perm("submissions.view_webhookevent"):
            extra_context["recent_deliveries"] = [
                _diagnosis(event) for event in bot_recent_deliveries(bot=bot)
            ]
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Bot | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk:
            context["webhook_url"] = self.webhook_url(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description="Rotate secret", permissions=["change"])
    def rotate_secret(
        self, request: HttpRequest, queryset: QuerySet[Bot]
    ) -> TemplateResponse:
        rotated = []
        for bot in queryset.order_by("name"):
            new_secret = bot_rotate_secret(bot=bot)
            self.log_change(request, bot, "Rotated the JWT secret.")
            rotated.append(
                {
                    "bot": bot,
                    "secret": new_secret,
                    "url": self.webhook_url(request, bot),
                }
            )
        response = TemplateResponse(
            request,
            "admin/submissions/bot/rotated.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "New secrets",
                "rotated": rotated,
            },
        )
        # Shown once: never kept by a cache or the browser's history.
        response["Cache-Control"] = "no-store"
        return response


def _diagnosis(event: WebhookEvent) -> dict[str, Any]:
    """What a person connecting a bot needs to see of one delivery.

    For a refused one: why, the token's header and claims as they arrived
    (decoded without verification at intake; never its signature), and which
    of the request fields the body held, under which spelling.
    """
    item: dict[str, Any] = {
        "event": event,
        "url": reverse("admin:submissions_webhookevent_change", args=[event.pk]),
    }
    if event.status != WebhookEvent.Status.REJECTED:
        return item
    payload = event.payload
    body_note = ""
    if payload is None and not event.erased_at:
        try:
            payload = parse_json(bytes(event.raw_body or b""))
        except WireError as exc:
            body_note = exc.detail
    item |= {
        "token": pretty_json(event.token_info) if event.token_info else "",
        "fields": [
            {"what": what, "found": found, "spellings": ", ".join(names)}
            for what, found, names in field_spellings(payload)
        ],
        "body_note": body_note,
    }
    return item
