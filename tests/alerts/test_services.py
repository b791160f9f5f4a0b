"""The rate limiter: one alert per (rule, key) and window, even with two workers at once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerts.models import AlertState
from alerts.services import alert_state_claim, alert_state_claim_once
from tests.alerts.factories import AlertRuleFactory

pytestmark = pytest.mark.django_db

WINDOW = timedelta(minutes=15)
KEY = "handler_failing:demo:save-form"


def claim(rule, at):
    return alert_state_claim(rule=rule, key=KEY, at=at, window=WINDOW)


def test_the_first_incident_sends_the_rest_of_the_window_are_counted():
    rule = AlertRuleFactory()
    t0 = timezone.now()

    first = claim(rule, t0)
    assert (first.count, first.held_back, first.previous_sent_at) == (1, 0, None)
    assert [claim(rule, t0 + timedelta(minutes=m)) for m in (1, 5, 14)] == [None] * 3

    state = AlertState.objects.get()
    assert (state.pending_count, state.first_pending_at) == (
        3,
        t0 + timedelta(minutes=1),
    )
    assert state.last_incident_at == t0 + timedelta(minutes=14)

    later = claim(rule, t0 + timedelta(minutes=15))
    assert (later.count, later.held_back) == (4, 3)
    assert later.first_at == t0 + timedelta(minutes=1)
    assert later.last_at == t0 + timedelta(minutes=15)
    assert later.previous_sent_at == state.last_sent_at
    # The window restarts at the incident that sent.
    assert claim(rule, t0 + timedelta(minutes=29)) is None
    assert claim(rule, t0 + timedelta(minutes=30)).count == 2


def test_an_incident_read_late_falls_in_the_open_window():
    rule = AlertRuleFactory()
    t0 = timezone.now()
    claim(rule, t0)
    assert claim(rule, t0 - timedelta(minutes=1)) is None


def test_windows_are_per_rule_and_key():
    rule, other_rule = AlertRuleFactory(), AlertRuleFactory()
    t0 = timezone.now()
    assert claim(rule, t0)
    assert claim(other_rule, t0)
    assert alert_state_claim(
        rule=rule, key="handler_failing:demo:other", at=t0, window=WINDOW
    )


def test_a_once_only_claim():
    rule = AlertRuleFactory()
    at = timezone.now()
    assert alert_state_claim_once(rule=rule, key="digest:2025-01-01", at=at)
    assert not alert_state_claim_once(rule=rule, key="digest:2025-01-01", at=at)
    assert alert_state_claim_once(rule=rule, key="digest:2025-01-02", at=at)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="real write concurrency needs PostgreSQL"
)
def test_two_workers_at_once_send_one_alert():
    rule = AlertRuleFactory()
    at = timezone.now()
    workers = 8
    barrier = threading.Barrier(workers)
    claims = []

    def work():
        try:
            barrier.wait()
            claims.append(claim(rule, at))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(claims) == workers
    assert sum(c is not None for c in claims) == 1
    assert AlertState.objects.get().pending_count == workers - 1
