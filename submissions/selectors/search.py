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
    common term (``common_threshold``) walks the newest submissions instead:
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
    if _is_common(answers):
        return submissions.filter(
            exact
            | ProbeEachRow(
                answers.filter(
                    submission=OuterRef("pk"), received_at=OuterRef("received_at")
                )
            )
        )
    matching = FormSubmission.objects.filter(exact).order_by().values("pk")
    matching = matching.union(answers.order_by().values("submission_id"))
    return submissions.filter(pk__in=matching)


def _is_common(answers: QuerySet[FormAnswer]) -> bool:
    """Whether ``answers`` holds at least ``common_threshold`` matches.

    One query reading at most that many matches (through the trigram index);
    only on PostgreSQL, where the walk is planned as meant.
    """
    if not reads_for(answers.db or "default").plans_trigram_walks:
        return False
    estimate = table_row_estimate(model=FormSubmission, using=answers.db)
    if not estimate:
        return False
    enough = common_threshold(estimate)
    return answers.order_by()[:enough].count() >= enough


def table_row_estimate(*, model: type[Model], using: str = "default") -> int | None:
    """The planner's estimate of ``model``'s row count, where the database keeps
    one for free (PostgreSQL); None elsewhere or unknown."""
    return reads_for(using).row_estimate(model)
