"""Personal data: erasure on request (command and admin), retention per form, masking.

Deliveries go through the real endpoint; erasure, retention and the daily
task run against the real database and the real task worker.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from handlers import WebhookHandler, register
from submissions.models import (
    ErasureLog,
    FormAnswer,
    FormSubmission,
    HandlerRun,
    RetentionPolicy,
    WebhookEvent,
)
from submissions.selectors.privacy import erasure_selector_hash
from tests.factories import BotFactory, FormSubmissionFactory, submission_with_answers

pytestmark = pytest.mark.django_db

ADA = {
    "handler": "save-form",
    "userId": "user-ada",
    "conversationId": "conv-ada",
    "formValues": [
        {"key": "name", "value": "Ada Lovelace"},
        {"key": "email", "type": "email", "value": "ada@example.com"},
        {"key": "phone", "type": "phone", "value": "+44 20 7946 0123"},
    ],
}
BOB = {
    "handler": "save-form",
    "userId": "user-bob",
    "conversationId": "conv-bob",
    "formValues": {"name": "Bob", "email": "bob@example.com"},
}


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def streamed(response) -> str:
    return b"".join(response.streaming_content).decode()


def staff(*codenames: str) -> User:
    user = User.objects.create_user(f"staff-{len(codenames)}", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api_for(user: User) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def two_people(deliver):
    for payload in (ADA, {**ADA, "formValues": {"name": "Ada again"}}, BOB):
        assert deliver(payload, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 200
    # A rejected request in Ada's conversation: no user id stored, her id in
    # its body (erased with the rest).
    deliver({**ADA, "formValues": "not a form"})
    return WebhookEvent.objects.filter(user_id="user-ada").order_by("pk")


# -- erasure -----------------------------------------------------------------------


def test_the_command_erases_one_person_and_leaves_audit_stubs(two_people):
    ada_events = list(two_people.values_list("pk", flat=True))
    bob_before = FormSubmission.objects.get(user_id="user-bob")

    out = run("erase_personal_data", "--user-id", "user-ada", "--yes")

    assert "Erased: 2 submissions, 4 answers, 3 events, 2 runs." in out
    assert not FormSubmission.objects.filter(user_id="user-ada").exists()
    assert FormAnswer.objects.filter(submission=bob_before).count() == 2
    for event in WebhookEvent.objects.filter(pk__in=ada_events):
        assert event.erased_at is not None
        assert event.erased_by.endswith("(command)")
        assert (event.payload, bytes(event.raw_body), event.headers) == (None, b"", {})
        assert (event.response_body, event.error_detail, event.traceback) == (
            None,
            "",
            "",
        )
        assert (event.conversation_id, event.user_id, event.remote_addr) == (
            "",
            "",
            None,
        )
        assert event.body_sha256 == ""
        # The stub: what happened, not to whom.
        assert event.handler_name == "save-form"
        assert event.status == WebhookEvent.Status.PROCESSED
        assert event.body_size > 0
        assert event.response_status == 200
    for run_ in HandlerRun.objects.filter(event_id__in=ada_events):
        assert (run_.reply, run_.message, run_.traceback) == (None, "", "")
    log = ErasureLog.objects.get()
    assert log.selector == "user_id"
    assert log.selector_hash == erasure_selector_hash("user-ada")
    assert "user-ada" not in json.dumps(list(ErasureLog.objects.values()), default=str)
    assert (log.submissions, log.answers, log.events, log.runs) == (2, 4, 3, 2)


def test_a_dry_run_counts_and_changes_nothing(two_people):
    out = run("erase_personal_data", "--user-id", "user-ada", "--dry-run")

    assert "Would erase: 2 submissions, 4 answers, 3 events, 2 runs." in out
    assert FormSubmission.objects.filter(user_id="user-ada").count() == 2
    assert not ErasureLog.objects.exists()


def test_erasing_again_finds_nothing(two_people):
    run("erase_personal_data", "--user-id", "user-ada", "--yes")
    out = run("erase_personal_data", "--user-id", "user-ada", "--yes")

    assert "Erased: 0 submissions, 0 answers, 0 events, 0 runs." in out
    assert ErasureLog.objects.count() == 2


def test_erasing_by_conversation_and_bot(two_people, deliver):
    other_bot = BotFactory(slug="other")
    deliver(ADA, to=other_bot)

    run(
        "erase_personal_data", "--conversation-id", "conv-ada", "--bot", "demo", "--yes"
    )

    assert not FormSubmission.objects.filter(bot__slug="demo", user_id="user-ada")
    assert FormSubmission.objects.filter(bot=other_bot, user_id="user-ada").count() == 1
    # The rejected event in that conversation kept no parsed ids: only the
    # ids the bot's accepted deliveries carried lead to a person's events.
    assert ErasureLog.objects.get().bot.slug == "demo"


def test_the_command_needs_a_confirmation(two_people):
    with pytest.raises(CommandError, match="--yes"):
        run("erase_personal_data", "--user-id", "user-ada")
    with pytest.raises(CommandError, match="No bot with slug"):
        run("erase_personal_data", "--user-id", "user-ada", "--bot", "nope", "--yes")
    assert FormSubmission.objects.filter(user_id="user-ada").count() == 2


def test_the_read_api_stops_returning_erased_data_at_once(two_people, admin_user):
    api = api_for(admin_user)
    event_id = two_people.first().pk
    run("erase_personal_data", "--user-id", "user-ada", "--yes")

    submissions = api.get("/api/submissions/", {"user_id": "user-ada"}).json()
    event = api.get(f"/api/events/{event_id}/").json()
    export = streamed(api.get("/api/submissions/", {"format": "csv"}))

    assert submissions["results"] == []
    assert event["payload"] is None
    assert event["user_id"] == ""
    assert "ada@example.com" not in export
    assert "Ada" not in export


@pytest.mark.django_db(transaction=True)
def test_a_queued_follow_up_of_an_erased_event_does_nothing(deliver, handler_registry):
    followed: list[str] = []

    @register
    class Crm(WebhookHandler):
        name = "crm"

        def handle(self, request, response):
            response.add_text("ok")

        def follow_up(self, request):
            followed.append(request.user_id)

    deliver({**ADA, "handler": "crm"})
    run("erase_personal_data", "--user-id", "user-ada", "--yes")
    call_command(
        "db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0
    )

    assert followed == []
    assert DBTaskResult.objects.get().return_value == (
        "skipped: the event's data was erased"
    )
    assert not HandlerRun.objects.filter(trigger=HandlerRun.Trigger.FOLLOW_UP)


SUBMISSIONS = reverse("admin:submissions_formsubmission_changelist")
EVENTS = reverse("admin:submissions_webhookevent_changelist")


def test_the_admin_action_needs_its_own_permission(two_people):
    viewer = logged_in(staff("view_formsubmission", "view_webhookevent"))
    eraser = logged_in(
        staff("view_formsubmission", "view_webhookevent", "erase_personal_data")
    )

    assert "erase_personal_data" not in viewer.get(SUBMISSIONS).content.decode()
    assert "erase_personal_data" in eraser.get(SUBMISSIONS).content.decode()
    assert "erase_personal_data" in eraser.get(EVENTS).content.decode()


@pytest.mark.parametrize("url", [SUBMISSIONS, EVENTS])
def test_the_admin_action_confirms_then_erases(two_people, url):
    user = staff("view_formsubmission", "view_webhookevent", "erase_personal_data")
    client = logged_in(user)
    row = (
        FormSubmission.objects.filter(user_id="user-ada").first()
        if url == SUBMISSIONS
        else two_people.first()
    )
    post = {"action": "erase_personal_data", "_selected_action": [row.pk]}

    confirm = client.post(url, post)

    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "This cannot be undone" in page
    assert "u***" in page  # the id, masked
    assert FormSubmission.objects.filter(user_id="user-ada").count() == 2

    done = client.post(url, {**post, "confirm": "yes"}, follow=True)

    assert "Erased the data of 1 person(s): 2 submissions" in done.content.decode()
    assert not FormSubmission.objects.filter(user_id="user-ada").exists()
    assert FormSubmission.objects.filter(user_id="user-bob").exists()
    log = ErasureLog.objects.get()
    assert (log.requested_by, log.source) == (user.username, "admin")


def test_the_erasure_log_is_read_only(admin_client, two_people):
    run("erase_personal_data", "--user-id", "user-ada", "--yes")
    log = ErasureLog.objects.get()
    changelist = reverse("admin:submissions_erasurelog_changelist")

    assert admin_client.get(changelist).status_code == 200
    assert (
        admin_client.get(reverse("admin:submissions_erasurelog_add")).status_code == 403
    )
    assert (
        admin_client.post(
            reverse("admin:submissions_erasurelog_delete", args=[log.pk])
        ).status_code
        == 403
    )
    detail = admin_client.get(
        reverse("admin:submissions_erasurelog_change", args=[log.pk])
    )
    assert detail.status_code == 200
    assert "user-ada" not in detail.content.decode()


# -- retention ---------------------------------------------------------------------


@pytest.fixture
def aged(bot):
    """Submissions (with their events) of two forms, 10 and 100 days old."""
    now = timezone.now()
    made = {}
    for form in ("contact", "survey"):
        for days in (10, 100):
            submission = submission_with_answers(
                {"q": f"{form}-{days}"},
                bot=bot,
                handler_name=form,
                submitted_at=now - timedelta(days=days),
            )
            WebhookEvent.objects.filter(pk=submission.event_id).update(
                bot=bot, received_at=now - timedelta(days=days), handler_name=form
            )
            made[form, days] = submission
    return made


def test_a_policy_removes_its_forms_old_data_only(bot, aged):
    RetentionPolicy.objects.create(bot=bot, handler_name="contact", keep_days=90)

    dry = run("purge_events", "--policies", "--dry-run")
    assert "would delete 1 submission(s) and 1 event(s)" in dry
    assert FormSubmission.objects.count() == 4

    out = run("purge_events", "--policies")

    assert "Deleted 1 submission(s) and 1 event(s)." in out
    left = set(FormSubmission.objects.values_list("handler_name", "answers__value"))
    assert left == {
        ("contact", "contact-10"),
        ("survey", "survey-10"),
        ("survey", "survey-100"),
    }
    assert not WebhookEvent.objects.filter(pk=aged["contact", 100].event_id).exists()


def test_no_policy_keeps_everything(aged):
    assert "everything is kept" in run("purge_events", "--policies")
    assert FormSubmission.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_the_daily_run_is_queued_once_and_keeps_itself_going(bot, aged):
    RetentionPolicy.objects.create(bot=bot, handler_name="survey", keep_days=30)

    assert "Queued the daily retention run" in run(
        "purge_events", "--policies", "--daily"
    )
    assert "already queued" in run("purge_events", "--policies", "--daily")
    assert DBTaskResult.objects.filter(status="READY").count() == 1

    call_command(
        "db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0
    )

    assert set(FormSubmission.objects.values_list("handler_name", flat=True)) == {
        "contact",
        "survey",
    }
    assert FormSubmission.objects.filter(handler_name="survey").count() == 1
    queued = DBTaskResult.objects.get(status="READY")
    assert queued.run_after > timezone.now() + timedelta(hours=23)


def test_saving_a_policy_in_the_admin_queues_the_daily_run(admin_client, bot):
    response = admin_client.post(
        reverse("admin:submissions_retentionpolicy_add"),
        {"bot": bot.pk, "handler_name": "contact", "keep_days": 90},
    )
    assert response.status_code == 302
    assert RetentionPolicy.objects.get().keep_days == 90
    assert DBTaskResult.objects.filter(status="READY").count() == 1


# -- masking in the pages (masking.py's own tests: test_masking.py) --------------


def test_staff_without_the_permission_see_sensitive_answers_masked(deliver):
    deliver(ADA)
    submission = FormSubmission.objects.get()
    detail = reverse("admin:submissions_formsubmission_change", args=[submission.pk])
    viewer = logged_in(staff("view_formsubmission"))
    trusted = logged_in(staff("view_formsubmission", "view_sensitive_answers"))

    for page in (viewer.get(SUBMISSIONS), viewer.get(detail)):
        text = page.content.decode()
        assert "ada@example.com" not in text
        assert "a***@example.com" in text
        assert "Ada Lovelace" in text  # a name is not listed as sensitive
    assert "+44 *** *** 123" in viewer.get(detail).content.decode()
    for page in (trusted.get(SUBMISSIONS), trusted.get(detail)):
        assert "ada@example.com" in page.content.decode()


def test_the_read_api_and_its_csv_mask_without_the_permission(deliver):
    deliver(ADA)
    views = ("view_formsubmission", "view_webhookevent", "export_formsubmission")
    masked = api_for(staff(*views))
    trusted = api_for(staff(*views, "view_sensitive_answers", "view_formanswer"))

    answers = masked.get("/api/submissions/").json()["results"][0]["answers"]
    email = next(a for a in answers if a["key"] == "email")
    assert (email["value"], email["value_text"]) == ("a***@example.com",) * 2
    csv_masked = streamed(masked.get("/api/submissions/", {"format": "csv"}))
    assert "a***@example.com" in csv_masked
    assert "ada@example.com" not in csv_masked
    assert "+44 *** *** 123" in csv_masked

    answers = trusted.get("/api/submissions/").json()["results"][0]["answers"]
    assert "ada@example.com" in [a["value"] for a in answers]
    assert "ada@example.com" in streamed(
        trusted.get("/api/submissions/", {"format": "csv"})
    )


def test_the_admin_export_masks_without_the_permission(deliver):
    deliver(ADA)
    perms = ("view_formsubmission", "export_formsubmission")
    export = reverse("admin:submissions_formsubmission_export")

    masked = logged_in(staff(*perms)).get(export)
    full = logged_in(staff(*perms, "view_sensitive_answers")).get(export)

    masked_text, full_text = streamed(masked), streamed(full)
    assert "a***@example.com" in masked_text
    assert "ada@example.com" not in masked_text
    assert "ada@example.com" in full_text


def test_sensitive_keys_and_types_come_from_settings(settings, deliver):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "SENSITIVE_KEYS": ["name"]}
    deliver(ADA)
    submission = FormSubmission.objects.get()
    viewer = logged_in(staff("view_formsubmission"))
    page = viewer.get(
        reverse("admin:submissions_formsubmission_change", args=[submission.pk])
    ).content.decode()

    assert "Ada Lovelace" not in page
    assert "A***" in page
    assert "a***@example.com" in page  # the email type is still sensitive


def test_a_factory_submission_is_masked_by_key(bot):
    submission = FormSubmissionFactory(event__bot=bot)
    FormAnswer.objects.create(
        submission=submission,
        position=0,
        key="email",
        value="x@y.z",
        value_text="x@y.z",
    )
    viewer = logged_in(staff("view_formsubmission"))
    assert "x***@y.z" in viewer.get(SUBMISSIONS).content.decode()
