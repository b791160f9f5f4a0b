"""Bots: their webhook URLs and secrets (set, rotated, never shown in lists)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from handlers import registry
from handlers.mapping import MappingError, suggest
from handlers.wire import WireError, field_spellings, parse_json
from submissions.admin.common import CheckedActionsMixin, pretty_json
from submissions.models import Bot, WebhookEvent, generate_secret
from submissions.permissions import VIEW_WEBHOOKEVENT
from submissions.selectors.bots import bot_recent_deliveries
from submissions.services.bots import bot_rotate_secret
from submissions.services.reparse import webhook_events_reparse
from submissions.wire_preview import wire_mapping_preview, wire_mapping_validate


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
        fields = ["name", "slug", "is_active", "secret", "wire_mapping"]
        widgets = {
            "wire_mapping": forms.Textarea(
                attrs={
                    "rows": 12,
                    "cols": 80,
                    "spellcheck": "false",
                    "class": "vLargeTextField",
                }
            )
        }

    def clean_wire_mapping(self) -> Any:
        data = self.cleaned_data.get("wire_mapping") or {}
        wire_mapping_validate(bot=self.instance, data=data)
        return data

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
    actions = ["rotate_secret", "reparse_deliveries"]
    change_form_template = "admin/submissions/bot/change_form.html"

    class Media:
        js = ["submissions/admin/copy.js", "submissions/admin/wire_mapping.js"]

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:bot_id>/wire-preview/",
                self.admin_site.admin_view(self.wire_preview_view),
                name="submissions_bot_wire_preview",
            ),
            *super().get_urls(),
        ]

    def wire_preview_view(self, request: HttpRequest, bot_id: int) -> JsonResponse:
        """What the bot's last deliveries yield under a mapping being edited (POST)."""
        bot = get_object_or_404(Bot, pk=bot_id)
        if request.method != "POST":
            return JsonResponse(
                {"error": "method_not_allowed", "detail": "POST a mapping to preview."},
                status=405,
            )
        if not self.has_change_permission(request, bot):
            raise PermissionDenied
        try:
            data = json.loads(request.POST.get("mapping") or "{}")
            wire_mapping_validate(bot=bot, data=data)
        except ValueError as exc:
            return JsonResponse(
                {"error": "invalid_mapping", "detail": f"Not JSON: {exc}"}, status=400
            )
        except ValidationError as exc:
            return JsonResponse(
                {"error": "invalid_mapping", "detail": " ".join(exc.messages)},
                status=400,
            )
        rows = wire_mapping_preview(bot=bot, data=data, user=request.user)
        return JsonResponse(
            {
                "rows": [
                    {
                        "event": row.event_id,
                        "received": row.received_at.isoformat(),
                        "status": row.status,
                        "handler": row.handler_name,
                        "conversation": row.conversation_id,
                        "user": row.user_id,
                        "delivery": row.delivery_id,
                        "answers": [[key, value] for key, value in row.answers],
                        "answer_count": row.answer_count,
                        "error": row.error,
                    }
                    for row in rows
                ]
            }
        )

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
        if bot is not None and request.user.has_perm(VIEW_WEBHOOKEVENT):
            recent = bot_recent_deliveries(bot=bot)
            extra_context["recent_deliveries"] = [_diagnosis(e) for e in recent]
            extra_context |= _wire_mapping_context(request, bot, recent)
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

    @admin.action(
        description="Read stored deliveries again with the bot's wire mapping",
        permissions=["change"],
    )
    def reparse_deliveries(self, request: HttpRequest, queryset: QuerySet[Bot]) -> None:
        for bot in queryset.order_by("name"):
            counts: dict[str, int] = {}
            for result in webhook_events_reparse(
                bot=bot, by=request.user.get_username()
            ):
                counts[result.change] = counts.get(result.change, 0) + 1
            summary = ", ".join(f"{n} {change}" for change, n in sorted(counts.items()))
            self.log_change(
                request, bot, f"Read deliveries again: {summary or 'none'}."
            )
            self.message_user(
                request,
                f"{bot.name}: read {sum(counts.values())} deliveries again"
                + (f" ({summary})" if summary else "")
                + ". Handlers did not run; replay the events that should run.",
                messages.SUCCESS,
            )

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


def _wire_mapping_context(
    request: HttpRequest, bot: Bot, recent: list[WebhookEvent]
) -> dict[str, Any]:
    """The mapping's preview on the last deliveries and, for an unparsed one
    (the latest, or ``?suggest=<event id>``), a mapping read from its body."""
    context: dict[str, Any] = {
        "wire_preview": wire_mapping_preview(
            bot=bot, data=bot.wire_mapping, user=request.user
        )
        if bot.mapping() is not None or not bot.wire_mapping
        else [],
        "wire_preview_url": reverse(
            "admin:submissions_bot_wire_preview", args=[bot.pk]
        ),
    }
    asked = request.GET.get("suggest", "")
    source = (
        WebhookEvent.objects.filter(bot=bot, pk=int(asked)).first()
        if asked.isdigit()
        else next((e for e in recent if e.status == WebhookEvent.Status.UNPARSED), None)
    )
    if source is not None and source.raw_body and source.erased_at is None:
        try:
            body = json.loads(bytes(source.raw_body))
        except ValueError:
            body = None
        if isinstance(body, dict):
            suggested = suggest(body, handler_names=registry.names())
            try:
                suggestion_preview = wire_mapping_preview(
                    bot=bot, data=suggested, user=request.user
                )
            except MappingError:  # a guess the mapping's own rules refuse
                return context
            context |= {
                "suggestion_event": source,
                "suggestion": json.dumps(suggested, indent=2),
                "suggestion_preview": suggestion_preview,
            }
    return context
