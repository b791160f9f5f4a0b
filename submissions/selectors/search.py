"""Answer search, planned for the database it runs on, and cheap row estimates."""

from __future__ import annotations

import math
from typing import Any

from django.db.models import (
    Exists,
    Model,
    OuterRef,
    Q,
    QuerySet,
)

from submissions.masking import sensitive_answer_q
from submissions.models import (
    FormAnswer,
    FormSubmission,
)
from submissions.selectors.backends import reads_for

#: Shorter search terms match only the exact columns (a trigram is 3 characters).
ANSWER_SEARCH_MIN_LENGTH = 3


#: The page of newest matches a walk looks for (the admin's rows per page).
SEARCH_PAGE = 100


def common_threshold(submissions: int) -> int:
    """How many matching answers make a term common: ``sqrt(submissions * SEARCH_PAGE)``.

    Collecting ``m`` matches costs about ``m`` reads; walking the newest
    submissions for a page of them about ``submissions * SEARCH_PAGE / m``
    probes. The two are equal at this ``m``, so neither ever costs more than
    about that many rows (31,623 at ten million submissions, where a share
    of 2 % made the test alone read 200,000 matches: 4 s).
    """
    return max(math.isqrt(submissions * SEARCH_PAGE), 1)


class ProbeEachRow(Exists):
    """``EXISTS`` that PostgreSQL tests per outer row, never as a hashed set.

    ``OFFSET 0`` keeps the planner from collecting the whole subquery first:
    for a word in a fifth of all answers that read 225,000 rows (0.9 s) where
    the newest page needs a few hundred index probes (2 ms).
    """

    def as_postgresql(
        self, compiler: Any, connection: Any, **extra: Any
    ) -> tuple[str, list[Any]]:
        return self.as_sql(
            compiler, connection, template="EXISTS(%(subquery)s OFFSET 0)", **extra
        )


def submission_search(
    *,
    submissions: QuerySet[FormSubmission],
    term: str,
    exact: Q,
    hide_sensitive: bool = False,
) -> QuerySet[FormSubmission]:
    """``submissions`` matching ``exact`` (indexed columns) or with an answer containing ``term``.

    One ``id IN (... UNION ...)`` subquery rather than a correlated
    ``EXISTS`` OR-ed with the columns, which made PostgreSQL test every
    submission (2 s at a million). The answer text is matched with
    ``icontains``, served on PostgreSQL by a trigram index
    (``answer_text_trgm_idx``), so only terms of at least
    ``ANSWER_SEARCH_MIN_LENGTH`` characters (a trigram) search answers. A
    common term (one in a tenth of the newest submissions, or with
    ``common_threshold`` matches) walks the newest submissions instead:
    a page of the newest matches is near the top of the time index; each
    probe names the submission's month (``received_at``, which its answers
    carry), so PostgreSQL reads one partition's index, not every month's.

    With ``hide_sensitive`` (a user who sees them masked), sensitive answers
    are not searched: finding a row by a value it masks would tell it.
    """
    if len(term) < ANSWER_SEARCH_MIN_LENGTH:
        return submissions.filter(exact)
    answers = FormAnswer.objects.filter(value_text__icontains=term)
    if hide_sensitive:
        answers = answers.exclude(sensitive_answer_q())
    plan = _plan(answers, searched=submissions)
    if plan is COMMON:
        return submissions.filter(exact | _probe(answers))
    if plan is not None:  # every match, read once: not again by count and page
        return submissions.filter(exact | Q(pk__in=plan))
    matching = FormSubmission.objects.filter(exact).order_by().values("pk")
    matching = matching.union(answers.order_by().values("submission_id"))
    return submissions.filter(pk__in=matching)


#: The newest submissions probed first: a term in at least ``COMMON_SAMPLE_SHARE``
#: of them is walked for at once, without counting its matches.
COMMON_SAMPLE = 2000
COMMON_SAMPLE_SHARE = 0.1


class _Common:
    """``_plan``'s answer for a term to walk for."""


COMMON = _Common()


def _plan(
    answers: QuerySet[FormAnswer], *, searched: QuerySet[FormSubmission]
) -> list[int] | _Common | None:
    """``COMMON`` when ``answers`` holds at least ``common_threshold`` matches;
    otherwise the ids of the submissions they belong to (every match).

    One query reading at most that many matches (through the trigram index),
    so a rare term's matches are read once, not by the count and again by
    the page (at ten million the trigram scan is most of the time). Only on
    PostgreSQL, where the walk is planned as meant; None elsewhere (the
    ``UNION`` subquery).
    """
    if not reads_for(answers.db or "default").plans_trigram_walks:
        return None
    estimate = table_row_estimate(model=FormSubmission, using=answers.db)
    if not estimate:
        return None
    if _newest_are_dense(answers, searched=searched):
        return COMMON
    enough = common_threshold(estimate)
    found = list(answers.order_by().values_list("submission_id", flat=True)[:enough])
    return COMMON if len(found) >= enough else sorted(set(found))


def _probe(answers: QuerySet[FormAnswer]) -> ProbeEachRow:
    """Whether a submission has an answer in ``answers``: one probe of its month's index."""
    return ProbeEachRow(
        answers.filter(submission=OuterRef("pk"), received_at=OuterRef("received_at"))
    )


def _newest_are_dense(
    answers: QuerySet[FormAnswer], *, searched: QuerySet[FormSubmission]
) -> bool:
    """Whether ``COMMON_SAMPLE_SHARE`` of the newest ``COMMON_SAMPLE`` submissions
    searched (a form's, a bot's: the ones the walk would probe) match.

    Two queries: the sample's oldest moment, then one probe per submission
    newer than it (about 12 ms at ten million). A word in a tenth of them
    fills a page within a thousand probes and the capped count within ten
    thousand, so reading up to ``common_threshold`` matches to learn that
    it is common (300 ms at ten million) is skipped.
    """
    newest = (
        searched.prefetch_related(None)
        .select_related(None)
        .order_by("-submitted_at", "-id")
    )
    edge = list(
        newest.values_list("submitted_at", flat=True)[COMMON_SAMPLE - 1 : COMMON_SAMPLE]
    )
    if not edge:  # fewer submissions than that: collecting is cheap
        return False
    matched = newest.filter(_probe(answers), submitted_at__gte=edge[0]).count()
    return matched >= COMMON_SAMPLE * COMMON_SAMPLE_SHARE


def table_row_estimate(*, model: type[Model], using: str = "default") -> int | None:
    """The planner's estimate of ``model``'s row count, where the database keeps
    one for free (PostgreSQL); None elsewhere or unknown."""
    return reads_for(using).row_estimate(model)
