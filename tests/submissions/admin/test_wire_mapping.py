"""The bot page's wire mapping: edited, previewed live, suggested, and used to read again."""

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from submissions.models import FormAnswer, WebhookEvent
from tests.submissions.admin.helpers import BOTS

pytestmark = pytest.mark.django_db

FOREIGN = {
    "block": {"handlerName": "save-form"},
    "answers": [{"q": "Name", "a": "Ann"}, {"q": "email", "a": "ann@example.com"}],
}
MAPPING = {
    "handler_name": "/block/handlerName",
    "answers": {"at": "/answers", "key": "/q", "value": "/a"},
}


def change_url(bot):
    return reverse("admin:submissions_bot_change", args=[bot.pk])


def preview_url(bot):
    return reverse("admin:submissions_bot_wire_preview", args=[bot.pk])


def form_data(bot, mapping):
    return {
        "name": bot.name,
        "slug": bot.slug,
        "is_active": "on",
        "secret": "",
        "wire_mapping": json.dumps(mapping),
    }


def test_an_unparsed_delivery_gets_a_suggestion_and_its_preview(
    admin_client, bot, deliver
):
    deliver(FOREIGN)
    event = WebhookEvent.objects.get()
    response = admin_client.get(change_url(bot))
    content = response.content.decode()

    assert response.context["suggestion_event"] == event
    assert (
        json.loads(response.context["suggestion"])["handler_name"]
        == "/block/handlerName"
    )
    (row,) = response.context["suggestion_preview"]
    assert (row.handler_name, row.answer_count) == ("save-form", 2)
    assert 'id="wire-use-suggestion"' in content
    assert f"?suggest={event.pk}#wire-mapping" in content  # from the deliveries list
    (current,) = response.context["wire_preview"]  # the defaults cannot read it
    assert "names no handler" in current.error


def test_the_live_preview_reads_the_last_deliveries_with_the_edited_mapping(
    admin_client, bot, deliver
):
    deliver(FOREIGN)
    response = admin_client.post(preview_url(bot), {"mapping": json.dumps(MAPPING)})
    assert response.status_code == 200
    (row,) = response.json()["rows"]
    assert row["handler"] == "save-form"
    assert row["answers"] == [["Name", "Ann"], ["email", "ann@example.com"]]
    assert not FormAnswer.objects.exists()
    bot.refresh_from_db()
    assert bot.wire_mapping == {}  # a preview saves nothing


@pytest.mark.parametrize(
    ("mapping", "detail"),
    [
        ("{not json", "Not JSON"),
        (json.dumps({"handler_name": "/block/name"}), "/block has no key 'name'"),
        (json.dumps({"colour": "/x"}), "Unknown key 'colour'"),
    ],
)
def test_the_preview_says_what_is_wrong(admin_client, bot, deliver, mapping, detail):
    deliver(FOREIGN)
    response = admin_client.post(preview_url(bot), {"mapping": mapping})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_mapping"
    assert detail in response.json()["detail"]


def test_the_preview_masks_for_staff_who_may_not_see_sensitive_answers(bot, deliver):
    deliver(FOREIGN)
    staff = User.objects.create_user("staffer", password="x", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["change_bot", "view_bot", "view_webhookevent"]
        )
    )
    client = Client()
    client.force_login(staff)
    response = client.post(preview_url(bot), {"mapping": json.dumps(MAPPING)})
    answers = dict(response.json()["rows"][0]["answers"])
    assert answers["email"] == "a***@example.com"
    assert b"ann@example.com" not in response.content
    page = client.get(change_url(bot)).content.decode()
    assert "ann@example.com" not in page.split('id="wire-mapping"')[1]


def test_the_preview_needs_the_change_permission(bot, deliver):
    deliver(FOREIGN)
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_bot"))
    client = Client()
    client.force_login(viewer)
    response = client.post(preview_url(bot), {"mapping": json.dumps(MAPPING)})
    assert response.status_code == 403


def test_saving_a_mapping_that_points_nowhere_says_which_pointer(
    admin_client, bot, deliver
):
    deliver(FOREIGN)
    wrong = {**MAPPING, "handler_name": "/block/handler_name"}
    response = admin_client.post(change_url(bot), form_data(bot, wrong))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["wire_mapping"]
    assert "'/block/handler_name'" in errors[0]
    assert "/block has no key 'handler_name'" in errors[0]
    bot.refresh_from_db()
    assert bot.wire_mapping == {}


def test_save_then_read_again_from_the_list(admin_client, bot, deliver):
    deliver(FOREIGN)
    response = admin_client.post(change_url(bot), form_data(bot, MAPPING))
    assert response.status_code == 302
    bot.refresh_from_db()
    assert bot.wire_mapping == MAPPING

    response = admin_client.post(
        BOTS,
        {"action": "reparse_deliveries", "_selected_action": [bot.pk]},
        follow=True,
    )
    assert "read 1 deliveries again (1 created)" in response.content.decode()
    assert sorted(FormAnswer.objects.values_list("key", flat=True)) == ["Name", "email"]
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.RECEIVED
    assert event.parse_history[0]["by"] == "admin"


def test_the_overview_lists_unparsed_deliveries_per_bot(admin_client, bot, deliver):
    deliver(FOREIGN)
    deliver(FOREIGN)
    response = admin_client.get(reverse("admin:overview"))
    (row,) = response.context["unparsed"]
    assert (row["bot__name"], row["n"]) == (bot.name, 2)
    assert f"{change_url(bot)}?suggest=" in response.content.decode()
