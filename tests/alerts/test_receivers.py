"""The request path: a processed delivery costs no query unless a rule subscribes to it."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import AlertKind, AlertRule
from alerts.receivers import on_delivery_answered
from alerts.selectors import is_watched
from submissions.models import WebhookEvent
from submissions.signals import delivery_answered
from tests.alerts.conftest import queued_task_names

# Real commits: the receiver's on_commit runs, as it does in production.
pytestmark = pytest.mark.django_db(transaction=True)

FORM = {"handler": "save-form", "formValues": {"q": "a"}}


def queries_per_delivery(deliver) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert deliver(FORM).status_code == 200
    return len(queries)


@pytest.fixture
def alerts_disconnected():
    def run(fn):
        delivery_answered.disconnect(
            sender=WebhookEvent, dispatch_uid="alerts.answered"
        )
        try:
            return fn()
        finally:
            delivery_answered.connect(
                on_delivery_answered,
                sender=WebhookEvent,
                dispatch_uid="alerts.answered",
            )

    return run


@pytest.mark.parametrize(
    "kinds",
    [
        [],
        [
            AlertKind.HANDLER_FAILING,
            AlertKind.UNKNOWN_HANDLER,
            AlertKind.REJECTED_TOKENS,
            AlertKind.FOLLOW_UP_DEAD,
        ],
    ],
    ids=["no rules", "rules for other kinds"],
)
def test_a_processed_delivery_runs_no_extra_query(
    deliver, make_rule, alerts_disconnected, kinds
):
    for kind in kinds:
        make_rule(kind)
    # A digest rule is read by the digest, not per delivery.
    make_rule(AlertKind.NEW_SUBMISSION, daily_digest=True)
    deliver(FORM)  # the first delivery in a process reads the rules (then every 30 s)

    with_alerts = queries_per_delivery(deliver)
    without_alerts = alerts_disconnected(lambda: queries_per_delivery(deliver))

    assert with_alerts == without_alerts
    assert queued_task_names() == []


def test_a_subscribed_form_costs_one_insert_the_task(
    deliver, make_rule, alerts_disconnected
):
    make_rule(AlertKind.NEW_SUBMISSION, handler_name="save-form")
    deliver(FORM)
    with CaptureQueriesContext(connection) as queries:
        deliver(FORM)
    without_alerts = alerts_disconnected(lambda: queries_per_delivery(deliver))

    assert len(queries) == without_alerts + 1
    assert "django_tasks_database_dbtaskresult" in queries[-1]["sql"].lower()
    assert queued_task_names() == ["alerts.incidents.alert_incident"] * 2


def test_rules_are_cached_and_a_saved_rule_is_seen_at_once(make_rule):
    def watched():
        return is_watched(kind=AlertKind.HANDLER_FAILING, bot_id=1, handler_name="x")

    assert not watched()
    with CaptureQueriesContext(connection) as queries:
        assert not watched()
    assert len(queries) == 0

    rule = make_rule(AlertKind.HANDLER_FAILING, handler_name="x")
    assert watched()
    rule.enabled = False
    rule.save()
    assert not watched()


def test_a_change_from_another_process_is_seen_when_the_cache_expires(
    make_rule, settings
):
    settings.ALERTS = {**settings.ALERTS, "RULE_CACHE_SECONDS": 0.2}
    rule = make_rule(AlertKind.HANDLER_FAILING)
    assert is_watched(kind="handler_failing", bot_id=1, handler_name="x")

    # As another process would write it: no signal reaches this one.
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)
    assert is_watched(kind="handler_failing", bot_id=1, handler_name="x")

    time.sleep(0.25)
    assert not is_watched(kind="handler_failing", bot_id=1, handler_name="x")
