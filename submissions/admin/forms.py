"""Forms as tables: every form with its counts, and one form's submissions, a column per question.

A *form* is a (bot, handler name) that has submissions. ``forms_view``
lists them; ``form_table_view`` shows one, newest first, with date and
text filters, a page at a time, each row linking to its submission, and
links to download exactly that view. Both need the submissions' view
permission; sensitive answers are masked as everywhere else.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import InvalidPage, Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from handlers import registry
from submissions.admin.bigtable import EstimatedCountPaginator, exact_search_q
from submissions.masking import can_see_sensitive, is_sensitive, mask_value
from submissions.models import Bot, FormSubmission
from submissions.moments import parse_moment
from submissions.permissions import EXPORT_FORMSUBMISSION, VIEW_FORMSUBMISSION
from submissions.selectors.console import form_page_answers, forms_summary
from submissions.selectors.exports import form_columns
from submissions.selectors.search import submission_search
from submissions.values import value_as_text

PER_PAGE = 50
#: Forms listed per page (each bot and handler name a caller sends is one).
FORMS_PER_PAGE = 100
#: Questions shown per page of a form's table (a form may have thousands).
COLUMNS_PER_PAGE = 50
#: Runs that failed within this long mark a form's handler "failing".
FAILING_WINDOW = timedelta(hours=24)


def _check(request: HttpRequest) -> None:
    if not request.user.has_perm(VIEW_FORMSUBMISSION):
        raise PermissionDenied


def _state(handler_name: str, failing_runs: int) -> str:
    if handler_name not in registry:
        return "unrouted"
    return "failing" if failing_runs else "registered"


def forms_view(request: HttpRequest) -> HttpResponse:
    _check(request)
    now = timezone.now()
    number = _page_number(request.GET.get("p"))
    start = (number - 1) * FORMS_PER_PAGE
    found = forms_summary(
        now=now,
        failing_since=now - FAILING_WINDOW,
        start=start,
        stop=start + FORMS_PER_PAGE,
    )
    if not found.forms and number > 1:  # past the end: the last page
        number = max(-(-found.total // FORMS_PER_PAGE), 1)
        start = (number - 1) * FORMS_PER_PAGE
        found = forms_summary(
            now=now,
            failing_since=now - FAILING_WINDOW,
            start=start,
            stop=start + FORMS_PER_PAGE,
        )
    forms = [
        {
            "summary": summary,
            "verbose_name": _verbose_name(summary.handler_name),
            "state": _state(summary.handler_name, summary.failing_runs),
            "url": reverse(
                "admin:form-table", args=[summary.bot.pk, summary.handler_name]
            ),
        }
        for summary in found.forms
    ]
    return TemplateResponse(
        request,
        "admin/submissions/forms.html",
        {
            **admin.site.each_context(request),
            "title": "Forms",
            "forms": forms,
            "total": found.total,
            "shown": (start + 1, start + len(forms)),
            "pages": _neighbour_links(
                request,
                "p",
                number,
                last=max(-(-found.total // FORMS_PER_PAGE), 1),
                labels=("previous forms", "next forms"),
            ),
            "opts": FormSubmission._meta,
        },
    )


def _verbose_name(handler_name: str) -> str:
    if handler_name in registry:
        return registry.get(handler_name).verbose_name or handler_name
    return handler_name


def form_table_view(
    request: HttpRequest, bot_id: int, handler_name: str
) -> HttpResponse:
    _check(request)
    bot = get_object_or_404(Bot, pk=bot_id)
    form = FormSubmission.objects.filter(bot=bot, handler_name=handler_name)
    all_columns = form_columns(bot=bot, handler_name=handler_name)
    if not all_columns and not form.exists():
        raise Http404("No submissions for this form.")
    column_pages = Paginator(all_columns, COLUMNS_PER_PAGE)
    column_page = column_pages.get_page(_page_number(request.GET.get("cols")))
    columns = list(column_page.object_list)
    shown = form.order_by("-submitted_at", "-id")
    since, until, errors = _dates(request)
    if since is not None:
        shown = shown.filter(submitted_at__gte=since)
    if until is not None:
        shown = shown.filter(submitted_at__lt=until)
    term = request.GET.get("q", "").strip()
    if term:
        shown = submission_search(
            submissions=shown,
            term=term,
            exact=exact_search_q(term, ("conversation_id", "user_id")),
            hide_sensitive=not can_see_sensitive(request.user),
        )
    paginator = EstimatedCountPaginator(shown, PER_PAGE)
    try:
        page = paginator.page(request.GET.get("p", 1))
    except InvalidPage:
        page = paginator.page(1)
    submissions = list(page.object_list)
    answers = form_page_answers(
        submission_ids=[s.pk for s in submissions],
        keys=[column.key for column in columns],
    )
    unmasked = can_see_sensitive(request.user)
    rows = [
        {
            "submission": submission,
            "url": reverse(
                "admin:submissions_formsubmission_change", args=[submission.pk]
            ),
            "cells": [
                _cell(answers[submission.pk].get(column.key), column.key, unmasked)
                for column in columns
            ],
        }
        for submission in submissions
    ]
    filters = {
        "bot__id__exact": bot.pk,
        "handler_name": handler_name,
        **({"q": term} if term else {}),
        **({"submitted_at__gte": since.isoformat()} if since else {}),
        **({"submitted_at__lt": until.isoformat()} if until else {}),
    }
    return TemplateResponse(
        request,
        "admin/submissions/form_table.html",
        {
            **admin.site.each_context(request),
            "title": f"{_verbose_name(handler_name)} on {bot}",
            "opts": FormSubmission._meta,
            "bot": bot,
            "handler_name": handler_name,
            "columns": columns,
            "column_note": _column_note(request, column_page, len(all_columns)),
            "rows": rows,
            "page": page,
            "paginator": paginator,
            "errors": errors,
            "query": {k: request.GET.get(k, "") for k in ("q", "since", "until")},
            "export_query": urlencode(filters),
            "can_export": request.user.has_perm(EXPORT_FORMSUBMISSION),
            "pages": _page_links(request, page),
        },
    )


def _dates(request: HttpRequest) -> tuple[Any, Any, list[str]]:
    since = until = None
    errors = []
    for name in ("since", "until"):
        text = request.GET.get(name, "").strip()
        if not text:
            continue
        try:
            moment = parse_moment(text, end=name == "until")
        except ValueError:
            errors.append(f"{name}: enter a date like 2025-01-31.")
            continue
        if name == "since":
            since = moment
        else:
            until = moment
    return since, until, errors


def _cell(answer: tuple[Any, str] | None, key: str, unmasked: bool) -> str:
    if answer is None:
        return ""
    value, input_type = answer
    if not unmasked and is_sensitive(key=key, input_type=input_type):
        value = mask_value(value)
    return value_as_text(value)


def _page_links(request: HttpRequest, page: Any) -> list[dict[str, Any]]:
    params = request.GET.copy()
    links = []
    for number, label in (
        (page.number - 1, "newer"),
        (page.number + 1, "older"),
    ):
        if number < 1 or (number > page.number and not page.has_next()):
            continue
        params["p"] = str(number)
        links.append({"label": label, "query": params.urlencode()})
    return links


def _page_number(text: str | None) -> int:
    """A page number from a query parameter: 1 for anything but a whole number."""
    text = (text or "").strip()
    if text.isascii() and text.isdigit() and len(text) < 10:
        return max(int(text), 1)
    return 1


def _neighbour_links(
    request: HttpRequest,
    parameter: str,
    number: int,
    *,
    last: int,
    labels: tuple[str, str],
) -> list[dict[str, str]]:
    """Links to the previous and next ``parameter`` page, keeping every other filter."""
    params = request.GET.copy()
    links = []
    for target, label in zip((number - 1, number + 1), labels, strict=True):
        if 1 <= target <= last:
            params[parameter] = str(target)
            links.append({"label": label, "query": params.urlencode()})
    return links


def _column_note(request: HttpRequest, page: Page, total: int) -> dict[str, Any] | None:
    """ "Questions 51 to 100 of 10,000", with links to the questions before and after."""
    if page.paginator.num_pages <= 1:
        return None
    return {
        "text": (
            f"Questions {page.start_index():,} to {page.end_index():,} of {total:,}."
        ),
        "links": _neighbour_links(
            request,
            "cols",
            page.number,
            last=page.paginator.num_pages,
            labels=("previous questions", "next questions"),
        ),
    }
