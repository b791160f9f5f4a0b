"""Replay from the admin: its own permission, the dead-letter list, constant queries."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from handlers import WebhookHandler, register
from submissions.models import HandlerRun, WebhookEvent

pytestmark = pytest.mark.django_db

EVENTS_URL = reverse("admin:submissions_webhookevent_changelist")
RUNS_URL = reverse("admin:submissions_handlerrun_changelist")


@pytest.fixture
def fixed(handler_registry):
    state = {"broken": True}

    @register
    class Fragile(WebhookHandler):
        name = "fragile"

        def handle(self, request, response):
            if state["broken"]:
                raise ValueError("bad config")
            response.add_text("fixed")

    return state


def staff(*perms: str):
    user = get_user_model().objects.create_user(
        "ops", password="pw-ops-123456", is_staff=True
    )
    for codename in ("view_webhookevent", "view_handlerrun", *perms):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def test_replay_action_reruns_failed_events_and_skips_duplicates(
    client, deliver, fixed
):
    deliver({"handler": "fragile", "id": "d-1", "formValues": {"a": 1}})
    deliver({"handler": "fragile", "id": "d-1", "formValues": {"a": 1}})  # a duplicate
    fixed["broken"] = False
    client.force_login(staff("replay_webhookevent"))

    response = client.post(
        EVENTS_URL,
        {
            "action": "replay_selected",
            "_selected_action": list(WebhookEvent.objects.values_list("pk", flat=True)),
        },
        follow=True,
    )

    text = response.content.decode()
    assert "Replayed 1 event(s): 1 succeeded." in text
    assert "Skipped 1 rejected or duplicate event(s)" in text
    original = WebhookEvent.objects.get(duplicate_of=None)
    assert original.status == "processed"
    assert list(original.runs.values_list("trigger", "outcome")) == [
        ("delivery", "failed"),
        ("replay", "succeeded"),
    ]


def test_replay_needs_its_own_permission(client, deliver, fixed):
    deliver({"handler": "fragile"})
    client.force_login(staff())
    page = client.get(EVENTS_URL)
    assert "replay_selected" not in page.content.decode()
    client.post(
        EVENTS_URL,
        {
            "action": "replay_selected",
            "_selected_action": [WebhookEvent.objects.get().pk],
        },
    )
    assert HandlerRun.objects.count() == 1  # nothing ran


def test_dead_letter_list_and_event_detail_show_the_runs(client, deliver, fixed):
    deliver({"handler": "fragile"})
    run = HandlerRun.objects.get()
    HandlerRun.objects.filter(pk=run.pk).update(outcome=HandlerRun.Outcome.DEAD)
    client.force_login(staff())

    dead = client.get(RUNS_URL, {"outcome__exact": "dead"}).content.decode()
    assert f"Event #{run.event_id}" in dead
    assert "builtins.ValueError" in dead
    alive = client.get(RUNS_URL, {"outcome__exact": "succeeded"}).content.decode()
    assert f"Event #{run.event_id}" not in alive

    detail = client.get(
        reverse("admin:submissions_webhookevent_change", args=[run.event_id])
    ).content.decode()
    assert "handler runs" in detail.lower()
    assert "bad config" in detail
    run_page = client.get(reverse("admin:submissions_handlerrun_change", args=[run.pk]))
    assert "ValueError: bad config" in run_page.content.decode()


def test_runs_list_queries_do_not_grow(client, deliver, fixed):
    client.force_login(staff())

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as context:
            assert client.get(RUNS_URL).status_code == 200
        return len(context.captured_queries)

    deliver({"handler": "fragile"})
    few = queries_for_list()
    for _ in range(15):
        deliver({"handler": "fragile"})
    assert queries_for_list() == few
    assert few <= 8
