"""A form of many answers is stored whole, at a cost linear in its size.

The statements a delivery sends are counted at two sizes: on PostgreSQL a
20,000-answer delivery sends as many statements, of the same text, as a
2,000-answer one (the answers go as arrays: ``statements.insert_rows_sql``);
on SQLite, bulk inserts batched by its variable limit, so statements and
text per answer do not grow with the size.
"""

from __future__ import annotations

import pytest
from django.db import connection

from submissions import statements
from submissions.models import FormAnswer, FormSubmission, WebhookEvent

pytestmark = pytest.mark.django_db


def _form(size: int, tag: str, *, prefix: str | None = None) -> dict[str, object]:
    prefix = tag if prefix is None else prefix
    values: dict[str, object] = {
        f"q{index:06d}": f"{prefix}-{index}" for index in range(size)
    }
    values["q000001"] = 1  # a number among the strings
    values["q000002"] = None
    values["q000003"] = {"nested": ["json", 2]}
    return {"handler": "nobody-handles-this", "id": tag, "formValues": values}


def _deliver_counted(deliver, size: int, tag: str) -> tuple[int, int, object]:
    """The delivery's response, with its writes counted: statements, and the
    length of their text as sent to the database (parameters apart)."""
    writes: list[str] = []

    def record(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(("INSERT", "WITH", "UPDATE")):
            writes.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        response = deliver(_form(size, tag))
    return len(writes), sum(len(sql) for sql in writes), response


def test_twenty_thousand_answers_are_stored_whole_in_order(deliver, settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "MAX_BODY_BYTES": 4 * 1024 * 1024}
    response = deliver(_form(20_000, "big"))

    assert response.status_code == 404  # no such handler: stored all the same
    event = WebhookEvent.objects.get(delivery_id="big")
    assert event.status == WebhookEvent.Status.UNROUTED
    submission = FormSubmission.objects.get(event=event)
    answers = FormAnswer.objects.filter(submission=submission).order_by("position")
    assert answers.count() == 20_000
    assert list(answers.values_list("position", flat=True)[:3]) == [0, 1, 2]
    first, number, empty, nested = answers[:4]
    assert (first.key, first.value, first.value_text) == ("q000000", "big-0", "big-0")
    assert (number.value, number.value_text) == (1, "1")
    assert empty.value is None
    assert nested.value == {"nested": ["json", 2]}
    last = answers.last()
    assert (last.position, last.key, last.value) == (19_999, "q019999", "big-19999")


def test_statements_per_delivery_do_not_grow_with_its_answers(deliver, settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "MAX_BODY_BYTES": 4 * 1024 * 1024}
    small_count, small_text, small = _deliver_counted(deliver, 2_000, "two-k")
    big_count, big_text, big = _deliver_counted(deliver, 20_000, "twenty-k")

    assert small.status_code == big.status_code == 404
    assert FormAnswer.objects.count() == 22_000
    if connection.vendor == "postgresql":
        # Arrays, one per column: the same statements, the same text.
        assert big_count == small_count
        assert big_text == small_text
    else:
        # Batches of bulk_create: per answer, no more statements or text.
        assert big_count / 20_000 <= small_count / 2_000
        assert big_text / 20_000 <= 1.05 * small_text / 2_000


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the UNNEST insert is PostgreSQL's"
)
def test_the_array_insert_and_the_values_insert_store_the_same_rows(deliver):
    # Just above and at the threshold: the two ways of inserting answers.
    above = statements.UNNEST_ABOVE + 1
    deliver(_form(above, "arrays", prefix="same"))
    deliver(_form(statements.UNNEST_ABOVE, "values", prefix="same"))

    def rows(tag: str) -> list[tuple[object, ...]]:
        return list(
            FormAnswer.objects.filter(submission__event__delivery_id=tag)
            .order_by("position")
            .values_list(
                "position", "key", "label", "input_type", "value", "value_text"
            )[: statements.UNNEST_ABOVE]
        )

    arrays, values = rows("arrays"), rows("values")
    assert len(arrays) == statements.UNNEST_ABOVE
    assert arrays == values
