"""The events' and runs' admin: read-only records, redaction, replay."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from submissions.models import WebhookEvent
from tests.factories import (
    BotFactory,
    WebhookEventFactory,
    submission_with_answers,
)
from tests.submissions.admin.helpers import (
    EVENTS,
    count_queries,
    event_url,
    submission_url,
)

pytestmark = pytest.mark.django_db


# --- bots ------------------------------------------------------------------------


# --- events ----------------------------------------------------------------------


class TestWebhookEventAdmin:
    def test_list_columns(self, admin_client, bot):
        WebhookEventFactory(bot=bot, conversation_id="conv-42", duration_ms=12.34)

        response = admin_client.get(EVENTS)

        content = response.content.decode()
        for text in ("Demo bot", "save-form", "Processed", "conv-42", "12.3 ms"):
            assert text in content
        assert response.context["cl"].show_full_result_count is False

    def test_filter_by_status(self, admin_client, bot):
        failed = WebhookEventFactory(bot=bot, status=WebhookEvent.Status.FAILED)
        WebhookEventFactory(bot=bot, status=WebhookEvent.Status.PROCESSED)

        response = admin_client.get(EVENTS, {"status__exact": "failed"})

        assert list(response.context["cl"].result_list) == [failed]

    def test_filter_by_bot_handler_and_date(self, admin_client, bot):
        other = BotFactory()
        today = WebhookEventFactory(bot=bot, handler_name="division-handler")
        WebhookEventFactory(bot=other, handler_name="division-handler")
        WebhookEventFactory(bot=bot, handler_name="save-form")
        WebhookEventFactory(
            bot=bot,
            handler_name="division-handler",
            received_at=datetime(2020, 1, 1, tzinfo=UTC),
        )
        start = today.received_at.replace(hour=0, minute=0, second=0, microsecond=0)

        response = admin_client.get(
            EVENTS,
            {
                "bot__id__exact": bot.pk,
                "handler_name": "division-handler",
                "received_at__gte": str(start),
                "received_at__lt": str(start + timedelta(days=1)),
            },
        )

        assert list(response.context["cl"].result_list) == [today]

    def test_handler_filter_lists_registered_names_and_an_unknown_selected_one(
        self, admin_client
    ):
        response = admin_client.get(EVENTS, {"handler_name": "gone-handler"})

        content = response.content.decode()
        assert "division-handler" in content
        assert "save-form" in content
        assert "gone-handler" in content

    @pytest.mark.parametrize("field", ["conversation_id", "user_id", "delivery_id"])
    def test_search_by_exact_id(self, admin_client, bot, field):
        wanted = WebhookEventFactory(bot=bot, **{field: "needle-123"})
        WebhookEventFactory(bot=bot)

        response = admin_client.get(EVENTS, {"q": "needle-123"})

        assert list(response.context["cl"].result_list) == [wanted]

    def test_search_by_handler_name_and_event_number(self, admin_client, bot):
        division = WebhookEventFactory(bot=bot, handler_name="division-handler")
        other = WebhookEventFactory(bot=bot)

        by_name = admin_client.get(EVENTS, {"q": "division-handler"})
        by_number = admin_client.get(EVENTS, {"q": str(other.pk)})

        assert list(by_name.context["cl"].result_list) == [division]
        assert other in by_number.context["cl"].result_list

    def test_detail_pretty_prints_json_and_shows_text_body_and_submission(
        self, admin_client, bot
    ):
        submission = submission_with_answers({"name": "Ada"}, event__bot=bot)
        event = submission.event
        event.raw_body = b'{"handler": "save-form", "n": "\xc3\xa9t\xc3\xa9"}'
        event.save()

        response = admin_client.get(event_url(event))

        content = response.content.decode()
        assert response.status_code == 200
        assert "{\n  &quot;handler&quot;: &quot;save-form&quot;," in content  # indented
        assert "&quot;Content-Type&quot;: &quot;application/json&quot;" in content
        assert "&quot;blocks&quot;: []" in content  # the reply
        assert "été" in content  # the raw body, decoded
        assert submission_url(submission) in content
        assert "Traceback" not in content
        assert 'name="_save"' not in content  # read-only

    def test_detail_shows_binary_body_as_hex_and_the_error(self, admin_client, bot):
        event = WebhookEventFactory(
            bot=bot,
            status=WebhookEvent.Status.FAILED,
            raw_body=b"\xff\xfe\x00<script>",
            error_code="handler_error",
            error_detail="The handler raised ZeroDivisionError.",
            traceback='Traceback (most recent call last):\n  File "x.py"\nZeroDivisionError',
        )

        content = admin_client.get(event_url(event)).content.decode()

        assert "ff fe 00 3c 73 63 72 69 70 74 3e" in content
        assert "<script>" not in content
        assert "handler_error" in content
        assert "The handler raised ZeroDivisionError." in content
        assert "ZeroDivisionError" in content
        assert "Traceback (most recent call last):" in content

    def test_events_cannot_be_added_or_changed(self, admin_client, bot):
        event = WebhookEventFactory(bot=bot, handler_name="save-form")

        add = admin_client.get(reverse("admin:submissions_webhookevent_add"))
        change = admin_client.post(event_url(event), {"handler_name": "hacked"})

        event.refresh_from_db()
        assert add.status_code == 403
        assert change.status_code == 403
        assert event.handler_name == "save-form"

    def test_list_queries_do_not_grow_with_rows(self, admin_client):
        for _ in range(2):
            WebhookEventFactory()
        few = count_queries(admin_client, EVENTS)

        for _ in range(40):
            WebhookEventFactory()  # a new bot each: the list must not query per row
        many = count_queries(admin_client, EVENTS)

        assert many == few

    def test_detail_queries_do_not_grow_with_answers(self, admin_client, bot):
        small = submission_with_answers({"a": 1}, event__bot=bot)
        big = submission_with_answers({f"q{i}": i for i in range(50)}, event__bot=bot)

        assert count_queries(admin_client, event_url(big.event)) == count_queries(
            admin_client, event_url(small.event)
        )
