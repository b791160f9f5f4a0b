"""The bots' admin: secrets set, rotated, never listed."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from submissions.models import Bot, WebhookEvent
from tests.submissions.admin.helpers import (
    BOTS,
    count_queries,
)

pytestmark = pytest.mark.django_db


# --- bots ------------------------------------------------------------------------


class TestBotAdmin:
    def test_list_shows_the_webhook_url_and_never_the_secret(self, admin_client, bot):
        response = admin_client.get(BOTS)

        content = response.content.decode()
        assert "http://testserver/webhooks/demo/" in content
        assert bot.secret not in content

    def test_searching_for_the_secret_finds_nothing(self, admin_client, bot):
        response = admin_client.get(BOTS, {"q": bot.secret})

        assert list(response.context["cl"].result_list) == []

    def test_change_page_has_url_copyable_secret_and_a_password_input(
        self, admin_client, bot
    ):
        response = admin_client.get(
            reverse("admin:submissions_bot_change", args=[bot.pk])
        )

        content = response.content.decode()
        assert 'value="http://testserver/webhooks/demo/"' in content
        assert 'id="bot-current-secret"' in content
        assert f'value="{bot.secret}"' in content  # the copy field, behind <details>
        assert '<input type="password" name="secret"' in content
        assert content.count(bot.secret) == 1  # never pre-filled in the password input

    def test_blank_secret_keeps_the_current_one(self, admin_client, bot):
        old = bot.secret
        response = admin_client.post(
            reverse("admin:submissions_bot_change", args=[bot.pk]),
            {"name": "Renamed", "slug": "demo", "is_active": "on", "secret": ""},
        )

        assert response.status_code == 302
        bot.refresh_from_db()
        assert (bot.name, bot.secret, bot.previous_secret) == ("Renamed", old, "")

    def test_a_typed_secret_replaces_it_and_the_old_one_stays_accepted(
        self, admin_client, bot
    ):
        old = bot.secret
        admin_client.post(
            reverse("admin:submissions_bot_change", args=[bot.pk]),
            {"name": bot.name, "slug": "demo", "is_active": "on", "secret": "from-ld"},
        )

        bot.refresh_from_db()
        assert (bot.secret, bot.previous_secret) == ("from-ld", old)

    def test_adding_a_bot_without_a_secret_generates_a_strong_one(self, admin_client):
        response = admin_client.post(
            reverse("admin:submissions_bot_add"),
            {"name": "New", "slug": "new", "is_active": "on", "secret": ""},
        )

        assert response.status_code == 302
        assert len(Bot.objects.get(slug="new").secret) >= 43  # 256 bits, URL-safe

    def test_rotate_secret_moves_the_current_one_and_shows_the_new_once(
        self, admin_client, bot
    ):
        old = bot.secret

        response = admin_client.post(
            BOTS, {"action": "rotate_secret", "_selected_action": [bot.pk]}
        )

        bot.refresh_from_db()
        content = response.content.decode()
        assert response.status_code == 200
        assert bot.previous_secret == old
        assert bot.secret != old
        assert len(bot.secret) >= 43
        assert f'value="{bot.secret}"' in content
        assert "http://testserver/webhooks/demo/" in content
        assert "no-store" in response["Cache-Control"]
        entry = LogEntry.objects.get(object_id=str(bot.pk))
        assert bot.secret not in entry.get_change_message()
        # Shown once: the list afterwards does not show it.
        assert bot.secret not in admin_client.get(BOTS).content.decode()

    def test_rotating_needs_the_change_permission(self, staff_client, bot):
        client = staff_client("view_bot")
        old = bot.secret

        client.post(BOTS, {"action": "rotate_secret", "_selected_action": [bot.pk]})

        bot.refresh_from_db()
        assert bot.secret == old


class TestBotPageDiagnosis:
    def test_a_delivery_signed_with_the_wrong_secret_is_diagnosed(
        self, admin_client, bot, deliver
    ):
        deliver({"handler": "save-form", "formValues": {"a": 1}})  # accepted
        deliver(
            {"handlerName": "save-form", "form_values": {"a": 1}, "sessionId": "s-1"},
            secret="the-secret-before-the-rotation-" + "x" * 20,
        )

        page = admin_client.get(
            reverse("admin:submissions_bot_change", args=[bot.pk])
        ).content.decode()

        assert "Last 2 deliveries" in page
        assert "invalid_signature" in page
        assert "does not match this bot&#x27;s JWT secret" in page
        # The token as it arrived: its algorithm and claims, never its signature.
        assert "&quot;alg&quot;: &quot;HS256&quot;" in page
        assert "body_sha256" in page
        token = WebhookEvent.objects.get(status="rejected").token_info
        assert set(token) == {"header", "claims"}
        # Which request fields came, under which spelling.
        assert "handler name: found as <code>handlerName</code>" in page
        assert "form values: found as <code>form_values</code>" in page
        assert "conversation id: found as <code>sessionId</code>" in page
        assert "user id: <strong>missing</strong>" in page

    def test_a_body_that_is_not_json_says_so(self, admin_client, bot, deliver):
        deliver(body=b"handler=save-form", token="not-a-jwt")

        page = admin_client.get(
            reverse("admin:submissions_bot_change", args=[bot.pk])
        ).content.decode()

        assert "malformed_token" in page
        assert "Not a decodable JWT" in page
        assert "The body is not valid JSON" in page

    def test_the_page_reads_a_constant_number_of_queries(
        self, admin_client, bot, deliver
    ):
        url = reverse("admin:submissions_bot_change", args=[bot.pk])
        deliver({"handler": "save-form"}, token="bad")
        few = count_queries(admin_client, url)
        for _ in range(5):
            deliver({"handler": "save-form"}, token="bad")
            deliver({"handler": "save-form"})
        assert count_queries(admin_client, url) == few

    def test_staff_who_cannot_view_events_do_not_see_them(self, bot, deliver):
        deliver({"handler": "save-form"}, token="bad")
        user = User.objects.create_user("bots-only", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(codename="change_bot"))
        client = Client()
        client.force_login(user)

        page = client.get(reverse("admin:submissions_bot_change", args=[bot.pk]))

        assert page.status_code == 200
        assert "bot-recent-deliveries" not in page.content.decode()
