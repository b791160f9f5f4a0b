"""Lists that stay fast at a million rows: the machinery every changelist here uses.

No unfiltered ``COUNT(*)`` (PostgreSQL's row estimate for an unfiltered list,
a count capped at 1,000 for a filtered one), exact-match search on indexed
columns, handler filters whose choices read no table.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import models
from django.db.models import Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest
from django.utils.functional import cached_property

from submissions.admin.common import MAX_ID, CheckedActionsMixin
from submissions.selectors.console import submission_handler_names
from submissions.selectors.search import table_row_estimate


class CappedCount(int):
    """A lower bound on a count: "1,000+" in the admin's "N results" texts."""

    def __str__(self) -> str:
        return f"{int(self):,}+"


class EstimatedCountPaginator(Paginator):
    """Counts that stay cheap at any size.

    An unfiltered list on PostgreSQL over a big table uses
    ``pg_class.reltuples`` for ``COUNT(*)`` (the page links are then
    approximate, which nobody minds on a list of millions). A filtered or
    searched list is counted up to ``count_cap`` rows (``SELECT count(*) FROM
    (... LIMIT cap + 1)``): beyond that the count is a ``CappedCount``, shown
    as "1,000+", and pages past the cap can still be opened.
    """

    #: Below this estimate the exact count is cheap enough to run.
    exact_below = 50_000
    #: Filtered lists are counted up to this many rows; None counts them all.
    count_cap: int | None = 1000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        if not queryset.query.where:
            estimate = table_row_estimate(model=queryset.model, using=queryset.db)
            if estimate is not None and estimate >= self.exact_below:
                return estimate
        if self.count_cap is None:
            return super().count
        found = queryset[: self.count_cap + 1].count()
        return CappedCount(self.count_cap) if found > self.count_cap else found

    @property
    def capped(self) -> bool:
        return isinstance(self.count, CappedCount)

    def validate_number(self, number: Any) -> int:
        if not self.capped:
            return super().validate_number(number)
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(self.error_messages["invalid_page"]) from None
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        return number

    def page(self, number: Any) -> Page:
        if not self.capped:
            return super().page(number)
        # More rows than counted: a page past the cap is as full as it can be.
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        return self._get_page(
            self.object_list[bottom : bottom + self.per_page], number, self
        )


class HandlerNameFilter(admin.SimpleListFilter):
    """Handler names from the registry: listing the choices reads no table."""

    title = "handler"
    parameter_name = "handler_name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = submission_handler_names()
        current = self.value()
        if current and current not in names:  # e.g. a handler since removed
            names = [*names, current]
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(handler_name=self.value())
        return queryset


def exact_search_q(term: str, fields: tuple[str, ...]) -> Q:
    """``term`` equal to one of ``fields``, or, when it is a whole number, the pk."""
    q = Q()
    for name in fields:
        q |= Q(**{name: term})
    if term.isascii() and term.isdigit() and int(term) < MAX_ID:  # not "²"
        q |= Q(pk=int(term))
    return q


class ExactSearchMixin:
    """Search by exact value on indexed columns (an ``icontains`` scan is slow at size).

    A whole number also matches the primary key.
    """

    exact_search_fields: tuple[str, ...] = ()

    def search_q(self, term: str) -> Q:
        return exact_search_q(term, self.exact_search_fields)

    def search(self, request: HttpRequest, queryset: QuerySet, term: str) -> QuerySet:
        """``queryset`` narrowed to ``term`` (never blank); override to widen it."""
        return queryset.filter(self.search_q(term))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return self.search(request, queryset, term), False


#: Columns no list filters on from its URL: what they hold may be masked or
#: withheld on the pages (answers, bodies, replies, errors), and no index
#: serves them.
CONTENT_FIELDS = (models.TextField, models.JSONField, models.BinaryField)


class BigTableAdmin(CheckedActionsMixin, admin.ModelAdmin):
    """A changelist for a table of millions: no full count, no facets, cheap pages."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator

    def lookup_allowed(
        self, lookup: str, value: str, request: HttpRequest | None = None
    ) -> bool:
        """Django's rule (local fields, and the list filters' relations), but no
        text, JSON or binary column: ``?payload__icontains=`` would tell a
        masked answer by which rows it leaves. Refused as a 400."""
        model = self.model
        for part in lookup.split(LOOKUP_SEP):
            try:
                field = model._meta.get_field(part)
            except FieldDoesNotExist:
                break
            if isinstance(field, CONTENT_FIELDS):
                return False
            if not field.is_relation or field.related_model is None:
                break
            model = field.related_model
        return super().lookup_allowed(lookup, value, request)
