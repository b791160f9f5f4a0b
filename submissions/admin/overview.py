"""The overview: the last 30 days per day as charts, and what needs attention.

The charts are SVG drawn here (no JavaScript, nothing from a CDN), each
followed by the same numbers as a table.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from submissions.masking import can_see_sensitive, event_redactor
from submissions.models import HandlerRun, WebhookEvent
from submissions.permissions import VIEW_WEBHOOKEVENT
from submissions.selectors.console import overview

DAYS = 30
CHART_HEIGHT = 120
BAR_WIDTH = 14
BAR_GAP = 4
#: Status colours, colour-blind friendly (Okabe-Ito).
STATUS_COLOURS = {
    "processed": "#009E73",
    "failed": "#D55E00",
    "unrouted": "#E69F00",
    "rejected": "#CC79A7",
    "duplicate": "#56B4E9",
    "received": "#999999",
    "unparsed": "#F0E442",
}
FORM_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"]
#: Forms drawn one by one; the rest are summed as "N other forms". Any caller
#: can make a form (a new handler name), so the chart must not grow with them.
FORM_SERIES = 8
OTHER_COLOUR = "#999999"
#: Rows of each "needs attention" table; the rest are counted, with a link.
ATTENTION_ROWS = 20


def _chart(series: list[tuple[str, str, list[int]]], days: int) -> dict[str, Any]:
    """Stacked bars, one per day: (label, colour, counts per day) -> SVG rectangles."""
    totals = [sum(counts[n] for _, _, counts in series) for n in range(days)]
    top = max(totals, default=0) or 1
    bars = []
    for n in range(days):
        y = CHART_HEIGHT
        for label, colour, counts in series:
            if counts[n]:
                height = max(counts[n] * CHART_HEIGHT / top, 1)
                y -= height
                bars.append(
                    {
                        "x": n * (BAR_WIDTH + BAR_GAP),
                        "y": round(y, 1),
                        "height": round(height, 1),
                        "colour": colour,
                        "title": f"{label}: {counts[n]}",
                    }
                )
    return {
        "bars": bars,
        "width": days * (BAR_WIDTH + BAR_GAP),
        "height": CHART_HEIGHT,
        "bar_width": BAR_WIDTH,
        "top": top,
        "legend": [(label, colour) for label, colour, _ in series],
    }


def _events_url(**filters: Any) -> str:
    return (
        reverse("admin:submissions_webhookevent_changelist") + "?" + urlencode(filters)
    )


def _more(rows: list[dict[str, Any]], url: str) -> dict[str, Any] | None:
    """How many rows are not shown, and where to see them all; None when all are."""
    hidden = len(rows) - ATTENTION_ROWS
    return {"n": hidden, "url": url} if hidden > 0 else None


def overview_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(VIEW_WEBHOOKEVENT):
        raise PermissionDenied
    data = overview(now=timezone.now(), days=DAYS)
    forms = sorted(data.submissions.items(), key=lambda item: -sum(item[1]))
    form_series = [
        (f"{bot} / {handler}", FORM_COLOURS[n % len(FORM_COLOURS)], counts)
        for n, ((bot, handler), counts) in enumerate(forms[:FORM_SERIES])
    ]
    if rest := forms[FORM_SERIES:]:
        form_series.append(
            (
                f"{len(rest):,} other form{'s' if len(rest) != 1 else ''}",
                OTHER_COLOUR,
                [sum(day) for day in zip(*(counts for _, counts in rest), strict=True)],
            )
        )
    status_series = [
        (WebhookEvent.Status(status).label, STATUS_COLOURS[status], counts)
        for status, counts in data.deliveries.items()
        if any(counts)
    ]
    for row in data.unrouted:
        row["url"] = _events_url(
            status__exact="unrouted",
            handler_name=row["handler_name"],
            bot__id__exact=row["bot_id"],
        )
    if data.failing and not can_see_sensitive(request.user):
        # A handler's error may repeat an answer: masked as on the event's page.
        runs = HandlerRun.objects.select_related("event").in_bulk(
            [row["last_id"] for row in data.failing]
        )
        for row in data.failing:
            run = runs.get(row["last_id"])
            row["message"] = (
                event_redactor(run.event).text(row["message"]) if run else ""
            )
    for row in data.unparsed:
        row["url"] = reverse("admin:submissions_bot_change", args=[row["bot_id"]])
        row["suggest_url"] = f"{row['url']}?suggest={row['last_id']}#wire-mapping"
    for row in data.failing:
        row["url"] = _events_url(
            status__exact="failed", handler_name=row["handler_name"]
        )
    for row in data.dead_follow_ups:
        row["url"] = (
            reverse("admin:submissions_handlerrun_changelist")
            + "?"
            + urlencode({"outcome__exact": "dead", "handler_name": row["handler_name"]})
        )
    for row in data.rejected_tokens:
        row["url"] = _events_url(status__exact="rejected", bot__id__exact=row["bot_id"])
    more = {
        "unrouted": _more(data.unrouted, _events_url(status__exact="unrouted")),
        "unparsed": _more(data.unparsed, _events_url(status__exact="unparsed")),
        "failing": _more(data.failing, _events_url(status__exact="failed")),
        "dead_follow_ups": _more(
            data.dead_follow_ups,
            reverse("admin:submissions_handlerrun_changelist")
            + "?"
            + urlencode({"outcome__exact": "dead"}),
        ),
        "rejected_tokens": _more(
            data.rejected_tokens, _events_url(status__exact="rejected")
        ),
    }
    return TemplateResponse(
        request,
        "admin/submissions/overview.html",
        {
            **admin.site.each_context(request),
            "title": "Overview",
            "days": data.days,
            "form_chart": _chart(form_series, DAYS),
            "status_chart": _chart(status_series, DAYS),
            "form_rows": form_series,
            "status_rows": status_series,
            "unrouted": data.unrouted[:ATTENTION_ROWS],
            "unparsed": data.unparsed[:ATTENTION_ROWS],
            "failing": data.failing[:ATTENTION_ROWS],
            "dead_follow_ups": data.dead_follow_ups[:ATTENTION_ROWS],
            "rejected_tokens": data.rejected_tokens[:ATTENTION_ROWS],
            "more": more,
        },
    )
