"""Pieces every admin page here shares: read-only records, JSON, links, tracebacks."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from submissions.services.tally_marks import tally_moments_mark, tally_rows_mark

PRE_STYLE = "white-space: pre-wrap; overflow-wrap: anywhere; max-width: 100%"
#: Ids are 64-bit: a larger number names no row (and overflows the column).
MAX_ID = 2**63


class CheckedActionsMixin:
    """An action posted with row ids that are not ids (a hand-made request) is
    refused with a message rather than failing in the database."""

    def response_action(
        self, request: HttpRequest, queryset: QuerySet
    ) -> HttpResponseBase | None:
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(_is_id(value) for value in selected):
            self.message_user(
                request,
                "The selected rows are not valid ids; select them from the list.",
                messages.ERROR,
            )
            return None
        return super().response_action(request, queryset)


def _is_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) < MAX_ID


class ReadOnlyAdminMixin:
    """What was received is a record: it can be viewed, never added or edited."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TallyMarkingDeleteMixin:
    """An admin's deletes mark the days of the rows they delete (``services.tallies``),
    in their transaction: the console counts those days again."""

    tally_time_field = "submitted_at"

    def tally_cascaded(self, queryset: QuerySet) -> list[Any]:
        """Times of the rows deleting ``queryset`` takes with it (none here)."""
        return []

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            only = type(obj).objects.filter(pk=obj.pk)
            tally_moments_mark(
                [getattr(obj, self.tally_time_field), *self.tally_cascaded(only)]
            )
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():
            tally_rows_mark(queryset, self.tally_time_field)
            tally_moments_mark(self.tally_cascaded(queryset))
            super().delete_queryset(request, queryset)


def pretty_json(value: Any) -> str:
    if value is None:
        return "-"
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    return format_html('<pre class="json-block" style="{}">{}</pre>', PRE_STYLE, text)


def search_link(model_admin: admin.ModelAdmin, term: str) -> str:
    """A link to ``model_admin``'s list searched for ``term`` (e.g. one conversation)."""
    if not term:
        return "-"
    opts = model_admin.model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return format_html(
        '<a href="{}?{}" title="Everything in this conversation">{}</a>',
        url,
        urlencode({"q": term}),
        Truncator(term).chars(40),
    )


def preformatted(text: str) -> str:
    """Text kept as written (a traceback), or "-"."""
    if not text:
        return "-"
    return format_html('<pre style="{}">{}</pre>', PRE_STYLE, text)


def event_link(event_id: int | None, *, missing: str = "-") -> str:
    """A link to event ``event_id``'s page."""
    if event_id is None:
        return missing
    url = reverse("admin:submissions_webhookevent_change", args=[event_id])
    return format_html('<a href="{}">Event #{}</a>', url, event_id)
