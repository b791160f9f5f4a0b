"""Personal data in the admin: erasure on request, its log, retention per form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from submissions.admin.common import ReadOnlyAdminMixin
from submissions.masking import mask_value
from submissions.models import Bot, ErasureLog, RetentionPolicy
from submissions.permissions import ERASE_PERSONAL_DATA
from submissions.retention import retention_schedule_daily
from submissions.selectors.privacy import ErasureCounts, personal_data_count
from submissions.services.privacy import personal_data_erase


@dataclass(frozen=True, slots=True)
class Person:
    """Whose data a selected row holds: the bot, and the id to erase by."""

    bot: Bot
    selector: str
    value: str

    @property
    def selector_label(self) -> str:
        return ErasureLog.Selector(self.selector).label


def _people(rows: QuerySet[Any]) -> tuple[list[Person], int]:
    """The people the selected submissions or events belong to; rows with no id."""
    people: dict[tuple[int, str, str], Person] = {}
    skipped = 0
    for row in rows.select_related("bot"):
        if row.user_id:
            person = Person(row.bot, ErasureLog.Selector.USER_ID, row.user_id)
        elif row.conversation_id:
            person = Person(
                row.bot, ErasureLog.Selector.CONVERSATION_ID, row.conversation_id
            )
        else:
            skipped += 1
            continue
        people[row.bot_id, person.selector, person.value] = person
    return list(people.values()), skipped


class ErasureMixin:
    """The "Erase these people's data" action, behind its own permission."""

    def has_erase_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ERASE_PERSONAL_DATA)

    @admin.action(description="Erase these people's data…", permissions=["erase"])
    def erase_personal_data(
        self, request: HttpRequest, queryset: QuerySet[Any]
    ) -> TemplateResponse | None:
        people, skipped = _people(queryset)
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request,
                "admin/submissions/erase_confirmation.html",
                {
                    **self.admin_site.each_context(request),  # type: ignore[attr-defined]
                    "opts": self.model._meta,  # type: ignore[attr-defined]
                    "title": "Erase personal data",
                    "people": [
                        {
                            "bot": person.bot,
                            "selector_label": person.selector_label,
                            "value": mask_value(person.value),
                            "counts": personal_data_count(
                                selector=person.selector,
                                value=person.value,
                                bot=person.bot,
                            ),
                        }
                        for person in people
                    ],
                    "skipped": skipped,
                    "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                    "action": "erase_personal_data",
                },
            )
        total = ErasureCounts()
        for person in people:
            erased = personal_data_erase(
                selector=person.selector,
                value=person.value,
                bot=person.bot,
                erased_by=request.user.get_username(),
                source="admin",
            )
            total += erased
        summary = ", ".join(f"{n} {name}" for name, n in total.as_dict().items())
        self.message_user(  # type: ignore[attr-defined]
            request,
            f"Erased the data of {len(people)} person(s): {summary}.",
            messages.SUCCESS,
        )
        return None


@admin.register(ErasureLog)
class ErasureLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every erasure request served; a record, never edited or deleted here."""

    list_display = [
        "requested_at",
        "requested_by",
        "source",
        "selector",
        "bot",
        "submissions",
        "answers",
        "events",
        "runs",
    ]
    list_filter = ["source", "selector", ("requested_at", admin.DateFieldListFilter)]
    search_fields = ["=selector_hash", "=requested_by"]
    search_help_text = (
        "A requester's name, or the hash of an id (see docs/personal-data.md)."
    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ["bot", "handler_name", "keep_days", "created_at"]
    list_filter = ["bot"]
    search_fields = ["handler_name"]

    def save_model(
        self, request: HttpRequest, obj: RetentionPolicy, form: Any, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        # A policy only acts when the daily run is queued: queue it now if not.
        retention_schedule_daily()
