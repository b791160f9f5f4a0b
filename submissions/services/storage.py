"""Where the hot path's writes meet the database: one small backend per database.

A delivery is written twice: its rows (event, submission, answers) when it
arrives, and its run with the status it leaves when the handler is done.
``Storage`` does both with the ORM's statements inside transactions, on any
database; ``StatementStorage`` (PostgreSQL) sends each as one statement of
data-modifying ``WITH`` clauses (``submissions.statements``). A second
PostgreSQL layout (partitioned tables, say) is a new subclass, chosen by
``storage_for``; the services above it do not change.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.db import connections, transaction
from django.db.models import Model

from submissions import statements
from submissions.models import FormAnswer, FormSubmission, HandlerRun, WebhookEvent


def saved(obj: Model, pk: int, using: str = "default") -> None:
    """``obj`` as ``save()`` would leave it: its new id, no longer being added."""
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = using


def savepoint_if_nested(using: str = "default") -> AbstractContextManager[Any]:
    """A savepoint when a transaction is open (a test's, a caller's); else nothing,
    as a single statement is atomic by itself."""
    if transaction.get_connection(using).in_atomic_block:
        return transaction.atomic(using=using)
    return nullcontext()


class Storage:
    """The ORM's statements, each write's rows together in a transaction."""

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def delivery_insert(
        self,
        *,
        event: WebhookEvent,
        submission: FormSubmission | None,
        answers: list[FormAnswer],
    ) -> None:
        """Insert ``event`` and its ``submission`` and ``answers``, all or nothing.

        Inside a caller's transaction, in a savepoint, so a duplicate's
        ``IntegrityError`` leaves it usable.
        """
        with transaction.atomic(using=self.using):
            event.save(force_insert=True, using=self.using)
            if submission is not None:
                submission.save(force_insert=True, using=self.using)
                FormAnswer.objects.using(self.using).bulk_create(answers)

    def run_insert(
        self, *, event: WebhookEvent, run: HandlerRun, fields: dict[str, Any]
    ) -> bool:
        """Insert ``run`` and set ``fields`` on ``event``, together, if the event
        was not erased. False (and nothing written) when it was, or is gone:
        the caller then writes what an erased event may keep."""
        with transaction.atomic(using=self.using):
            kept = (
                WebhookEvent.objects.using(self.using)
                .filter(pk=event.pk, erased_at__isnull=True)
                .update(**fields)
            )
            if not kept:
                return False
            run.save(force_insert=True, using=self.using)
        return True


class StatementStorage(Storage):
    """PostgreSQL: each write one statement (``submissions.statements``), atomic
    by itself, with no transaction around it."""

    def delivery_insert(
        self,
        *,
        event: WebhookEvent,
        submission: FormSubmission | None,
        answers: list[FormAnswer],
    ) -> None:
        clauses = [
            ("e", statements.insert_sql([event], returning=True, using=self.using))
        ]
        final = "SELECT (SELECT id FROM e)"
        if submission is not None:
            submission.event_id = statements.id_of("e")
            for answer in answers:
                answer.submission_id = statements.id_of("s")
            clauses += [
                (
                    "s",
                    statements.insert_sql(
                        [submission], returning=True, using=self.using
                    ),
                ),
                (
                    "a",
                    statements.insert_rows_sql(answers, using=self.using)
                    if len(answers) > statements.UNNEST_ABOVE
                    else statements.insert_sql(
                        answers, returning=False, using=self.using
                    ),
                ),
            ]
            final += ", (SELECT id FROM s)"
        with savepoint_if_nested(self.using):
            row = statements.run(clauses, final, using=self.using)
        saved(event, row[0], self.using)
        if submission is not None:
            submission.event = event
            saved(submission, row[1], self.using)
            for answer in answers:
                answer.submission = submission

    def run_insert(
        self, *, event: WebhookEvent, run: HandlerRun, fields: dict[str, Any]
    ) -> bool:
        # The run is inserted only if the event's UPDATE matched it not erased:
        # that UPDATE waits for an erasure holding the row, then sees it erased.
        with savepoint_if_nested(self.using):
            row = statements.run(
                [
                    (
                        "u",
                        statements.update_sql(
                            WebhookEvent,
                            event.pk,
                            fields,
                            where={"erased_at__isnull": True},
                            returning=True,
                            using=self.using,
                        ),
                    ),
                    (
                        "r",
                        statements.insert_sql(
                            [run], returning=True, only_if="u", using=self.using
                        ),
                    ),
                ],
                "SELECT (SELECT id FROM r)",
                using=self.using,
            )
        if row[0] is None:
            return False
        saved(run, row[0], self.using)
        return True


#: The backend for each database vendor; any other gets ``Storage``.
BACKENDS: dict[str, type[Storage]] = {"postgresql": StatementStorage}


@functools.cache
def storage_for(using: str = "default") -> Storage:
    return BACKENDS.get(connections[using].vendor, Storage)(using)
