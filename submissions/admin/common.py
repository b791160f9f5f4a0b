"""Pieces every admin page here shares: read-only records, JSON, links, tracebacks."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

PRE_STYLE = "white-space: pre-wrap; overflow-wrap: anywhere; max-width: 100%"


class ReadOnlyAdminMixin:
    """What was received is a record: it can be viewed, never added or edited."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
