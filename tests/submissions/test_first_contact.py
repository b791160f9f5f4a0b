"""First contact with a bot whose deliveries are spelled differently.

Its deliveries are kept whole as ``unparsed``; a wire mapping set with
``manage.py wire_mapping`` makes ``reparse_events`` give them their
submissions, and the next delivery in that shape its handler's reply.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from submissions.models import FormAnswer, FormSubmission, HandlerRun, WebhookEvent
from submissions.services.reparse import webhook_events_reparse

pytestmark = pytest.mark.django_db

FOREIGN = {
    "block": {"handlerName": "save-form"},
    "answers": [{"q": "Name", "a": "Ann"}],
}
ANSWERS_ELSEWHERE = {
    "handler": "save-form",
    "id": "d-2",
    "answers": [{"q": "Email", "a": "bo@example.com"}],
}
MAPPING = {
    "handler_name": "/block/handlerName",
    "answers": {"at": "/answers", "key": "/q", "value": "/a"},
}


@pytest.fixture
def mapping_file(tmp_path):
    def write(data) -> str:
        path = tmp_path / "mapping.json"
        path.write_text(json.dumps(data))
        return str(path)

    return write


def test_a_foreign_shape_is_kept_whole_and_answered_422(deliver, settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "REJECTED_BODY_BYTES": 16}
    response = deliver(FOREIGN)

    assert response.status_code == 422
    assert response.json()["error"] == "unrecognised_payload"
    assert "names no handler" in response.json()["detail"]
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.UNPARSED
    assert json.loads(bytes(event.raw_body)) == FOREIGN  # whole, not the 16-byte cap
    assert not event.body_truncated
    assert event.payload == FOREIGN
    assert not FormSubmission.objects.exists()


def test_answers_under_another_key_are_not_processed_without_them(deliver):
    response = deliver(ANSWERS_ELSEWHERE)
    assert response.status_code == 422
    assert "looks like answers" in response.json()["detail"]
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.UNPARSED
    assert not HandlerRun.objects.exists()  # no handler ran on a half-read delivery


def test_set_the_mapping_reparse_and_the_next_delivery_is_answered(
    deliver, bot, mapping_file
):
    deliver(FOREIGN)
    deliver({**FOREIGN, "answers": [{"q": "Name", "a": "Bo"}]})
    assert WebhookEvent.objects.filter(status="unparsed").count() == 2

    call_command("wire_mapping", bot.slug, "--set", mapping_file(MAPPING))
    bot.refresh_from_db()
    assert bot.wire_mapping == MAPPING

    call_command("reparse_events", "--bot", bot.slug)
    assert WebhookEvent.objects.filter(status="received").count() == 2
    assert sorted(FormAnswer.objects.values_list("key", "value")) == [
        ("Name", "Ann"),
        ("Name", "Bo"),
    ]
    event = WebhookEvent.objects.filter(status="received").first()
    assert event.handler_name == "save-form"
    (entry,) = event.parse_history
    assert entry["changed"] == ["handler_name", "status", "answers"]
    assert entry["by"] == "manage.py reparse_events"
    assert entry["answers"] == [0, 1]
    assert "Ann" not in json.dumps(event.parse_history)  # names and counts only

    response = deliver({**FOREIGN, "answers": [{"q": "Name", "a": "Cy"}]})
    assert response.status_code == 200
    assert response.json()["blocks"]  # the handler's own reply
    latest = WebhookEvent.objects.order_by("-id").first()
    assert latest.status == WebhookEvent.Status.PROCESSED
    assert list(latest.submission.answers.values_list("key", "value")) == [
        ("Name", "Cy")
    ]


def test_a_second_reparse_changes_nothing(deliver, bot, mapping_file):
    deliver(FOREIGN)
    call_command("wire_mapping", bot.slug, "--set", mapping_file(MAPPING))
    first = [r.change for r in webhook_events_reparse(bot=bot, by="test")]
    answers = list(FormAnswer.objects.values_list("pk", "key", "value"))
    history = WebhookEvent.objects.get().parse_history

    second = [r.change for r in webhook_events_reparse(bot=bot, by="test")]
    assert first == ["created"]
    assert second == ["unchanged"]
    assert list(FormAnswer.objects.values_list("pk", "key", "value")) == answers
    assert WebhookEvent.objects.get().parse_history == history


def test_a_changed_mapping_replaces_the_answers_it_reads_differently(
    deliver, bot, mapping_file
):
    deliver(
        {
            "handler": "save-form",
            "id": "d-3",
            "formValues": [{"key": "k", "value": 1, "title": "Q"}],
        }
    )
    bot.wire_mapping = {"answers": {"at": "/formValues", "key": "/title"}}
    bot.save()
    (result,) = webhook_events_reparse(bot=bot, by="test")
    assert result.change == "replaced"
    assert list(FormAnswer.objects.values_list("key", "value")) == [("Q", 1)]
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED


def test_a_dry_run_changes_nothing(deliver, bot, mapping_file):
    deliver(FOREIGN)
    call_command("wire_mapping", bot.slug, "--set", mapping_file(MAPPING))
    call_command("reparse_events", "--bot", bot.slug, "--dry-run")
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.UNPARSED
    assert not FormSubmission.objects.exists()


def test_an_erased_event_is_never_resurrected(deliver, bot, mapping_file):
    deliver({**FOREIGN, "user": {"id": "u-1"}})
    mapping = {**MAPPING, "user_id": "/user/id"}
    call_command("wire_mapping", bot.slug, "--set", mapping_file(mapping))
    call_command("reparse_events", "--bot", bot.slug)
    call_command("erase_personal_data", "--user-id", "u-1", "--yes")
    assert not FormAnswer.objects.exists()

    results = list(
        webhook_events_reparse(bot=bot, by="test", statuses=["received", "unparsed"])
    )
    assert results == []  # erased events are not even read
    assert not FormAnswer.objects.exists()


def test_a_mapping_that_points_nowhere_is_refused_naming_the_pointer(
    deliver, bot, mapping_file
):
    deliver(FOREIGN)
    wrong = {**MAPPING, "handler_name": "/block/handler_name"}
    with pytest.raises(
        CommandError,
        match=r"`handler_name` is '/block/handler_name'.*"
        r"/block has no key 'handler_name'",
    ):
        call_command("wire_mapping", bot.slug, "--set", mapping_file(wrong))
    bot.refresh_from_db()
    assert bot.wire_mapping == {}


def test_a_malformed_mapping_is_refused_with_a_sentence(bot, mapping_file):
    with pytest.raises(CommandError, match='starts with "/"'):
        call_command(
            "wire_mapping", bot.slug, "--set", mapping_file({"user_id": "user"})
        )


def test_suggest_proposes_a_mapping_that_reads_the_event(deliver, bot, capsys):
    deliver(FOREIGN)
    event = WebhookEvent.objects.get()
    call_command("wire_mapping", bot.slug, "--suggest", str(event.pk))
    out = capsys.readouterr().out
    suggested = json.loads(out[: out.index("\n}") + 2])
    assert suggested["handler_name"] == "/block/handlerName"
    assert suggested["answers"]["at"] == "/answers"
    assert "handler 'save-form'" in out
    assert "1 answer(s)" in out


def test_show_prints_the_mapping(bot, capsys):
    bot.wire_mapping = MAPPING
    bot.save()
    call_command("wire_mapping", bot.slug, "--show")
    assert json.loads(capsys.readouterr().out) == MAPPING


def test_an_unparsed_delivery_naming_the_person_is_erased(deliver):
    deliver({**FOREIGN, "user": {"id": "u-42"}, "answers": [{"q": "Name", "a": "Zed"}]})
    call_command("erase_personal_data", "--user-id", "u-42", "--yes")
    event = WebhookEvent.objects.get()
    assert event.erased_at is not None
    assert bytes(event.raw_body) == b""
    assert event.payload is None


def test_a_reparse_of_a_tallied_delivery_shows_in_the_console_at_once(deliver, bot):

    from django.utils import timezone

    from submissions.models import TallyDay
    from submissions.selectors.exports import form_columns
    from submissions.services.tallies import TALLY_LAG, tallies_count

    deliver(
        {
            "handler": "save-form",
            "id": "d-4",
            "formValues": [{"key": "k", "value": 1, "title": "Q"}],
        }
    )
    tallies_count(now=timezone.now() + TALLY_LAG * 2)
    assert [c.key for c in form_columns(bot=bot, handler_name="save-form")] == ["k"]
    bot.wire_mapping = {"answers": {"at": "/formValues", "key": "/title"}}
    bot.save()
    (result,) = webhook_events_reparse(bot=bot, by="test")
    assert result.change == "replaced", result
    assert TallyDay.objects.exists()  # its day is read from its rows
    assert "Q" in [c.key for c in form_columns(bot=bot, handler_name="save-form")]
    assert tallies_count(now=timezone.now() + TALLY_LAG * 2).days_recounted == 1
    assert "Q" in [c.key for c in form_columns(bot=bot, handler_name="save-form")]
