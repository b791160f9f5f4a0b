import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from api.models import ApiToken
from submissions.models import (
    Bot,
    DeliveryDayTally,
    ErasureLog,
    FormAnswer,
    FormDayTally,
    FormSubmission,
    HandlerRun,
    QuestionTally,
    ReplayJob,
    RetentionPolicy,
    TallyDay,
    TallyState,
    WebhookEvent,
)
from submissions.values import value_as_text


class BotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bot

    name = factory.Sequence(lambda n: f"Bot {n}")
    slug = factory.Sequence(lambda n: f"bot-{n}")
    secret = factory.Faker("pystr", min_chars=43, max_chars=43)
    is_active = True


class WebhookEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookEvent

    bot = factory.SubFactory(BotFactory)
    received_at = factory.LazyFunction(timezone.now)
    handler_name = "save-form"
    status = WebhookEvent.Status.PROCESSED
    conversation_id = factory.Faker("uuid4")
    user_id = factory.Faker("user_name")
    delivery_id = factory.Faker("uuid4")
    payload = factory.LazyAttribute(
        lambda o: {"handler": o.handler_name, "conversationId": o.conversation_id}
    )
    raw_body = factory.LazyAttribute(lambda o: json.dumps(o.payload).encode())
    body_size = factory.LazyAttribute(lambda o: len(o.raw_body))
    body_sha256 = factory.LazyAttribute(
        lambda o: hashlib.sha256(o.raw_body).hexdigest()
    )
    headers = factory.LazyFunction(lambda: {"Content-Type": "application/json"})
    response_status = 200
    response_body = factory.LazyFunction(lambda: {"blocks": [], "variables": {}})
    duration_ms = 3.5


class FormSubmissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FormSubmission

    event = factory.SubFactory(WebhookEventFactory)
    bot = factory.SelfAttribute("event.bot")
    handler_name = factory.SelfAttribute("event.handler_name")
    conversation_id = factory.SelfAttribute("event.conversation_id")
    user_id = factory.SelfAttribute("event.user_id")
    submitted_at = factory.SelfAttribute("event.received_at")
    received_at = factory.SelfAttribute("event.received_at")


class FormAnswerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FormAnswer

    submission = factory.SubFactory(FormSubmissionFactory)
    position = factory.Sequence(lambda n: n)
    key = factory.Sequence(lambda n: f"question_{n}")
    label = factory.Faker("sentence", nb_words=4)
    input_type = "text"
    value = factory.Faker("word")
    value_text = factory.LazyAttribute(lambda o: value_as_text(o.value))
    received_at = factory.SelfAttribute("submission.received_at")


class HandlerRunFactory(factory.django.DjangoModelFactory):
    """A delivery run that succeeded, replying what the event replied."""

    class Meta:
        model = HandlerRun

    event = factory.SubFactory(WebhookEventFactory)
    attempt = 1
    trigger = HandlerRun.Trigger.DELIVERY
    handler_name = factory.SelfAttribute("event.handler_name")
    started_at = factory.SelfAttribute("event.received_at")
    duration_ms = 3.5
    finished_at = factory.LazyAttribute(
        lambda o: o.started_at + timedelta(milliseconds=o.duration_ms)
    )
    outcome = HandlerRun.Outcome.SUCCEEDED
    reply = factory.SelfAttribute("event.response_body")


class ErasureLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ErasureLog

    requested_by = factory.Faker("user_name")
    source = "admin"
    selector = ErasureLog.Selector.USER_ID
    selector_hash = factory.Faker("sha256")
    bot = factory.SubFactory(BotFactory)
    submissions = 1
    answers = 3
    events = 1
    runs = 1


class RetentionPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RetentionPolicy

    bot = factory.SubFactory(BotFactory)
    handler_name = factory.Sequence(lambda n: f"form-{n}")
    keep_days = 90


class ReplayJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReplayJob

    filter = factory.LazyFunction(lambda: {"statuses": ["failed"]})
    estimate = 10
    max_event_id = 10
    source = "command"


class TallyStateFactory(factory.django.DjangoModelFactory):
    """The tallies' one state row (primary key 1), in the site's time zone."""

    class Meta:
        model = TallyState
        django_get_or_create = ("id",)

    id = 1
    time_zone = factory.LazyFunction(timezone.get_current_timezone_name)


class FormDayTallyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FormDayTally

    bot = factory.SubFactory(BotFactory)
    handler_name = "save-form"
    day = factory.Sequence(lambda n: date(2026, 1, 1) + timedelta(days=n))
    submissions = 3
    last_at = factory.LazyAttribute(
        lambda o: timezone.make_aware(datetime.combine(o.day, time(12)))
    )
    last_id = 1


class DeliveryDayTallyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeliveryDayTally

    day = factory.Sequence(lambda n: date(2026, 1, 1) + timedelta(days=n))
    status = WebhookEvent.Status.PROCESSED
    deliveries = 3


class QuestionTallyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = QuestionTally

    bot = factory.SubFactory(BotFactory)
    handler_name = "save-form"
    key = factory.Sequence(lambda n: f"q{n}")
    first_at = factory.LazyFunction(timezone.now)
    first_id = 1
    first_position = 0
    last_at = factory.SelfAttribute("first_at")
    last_id = 1
    last_position = 0
    label = "Question"


class TallyDayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TallyDay

    day = factory.Sequence(lambda n: date(2026, 1, 1) + timedelta(days=n))
    marked_at = factory.LazyFunction(timezone.now)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("a long password 123")


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A read API token (its key made by DRF on save)."""

    class Meta:
        model = ApiToken

    user = factory.SubFactory(UserFactory)


def submission_with_answers(answers: dict[str, Any], **kwargs: Any) -> FormSubmission:
    """A submission whose answers are ``answers`` in order (key -> value)."""
    submission = FormSubmissionFactory(**kwargs)
    for position, (key, value) in enumerate(answers.items()):
        FormAnswerFactory(
            submission=submission,
            position=position,
            key=key,
            label=key.title(),
            value=value,
        )
    return submission


def bulk_submissions(
    count: int,
    *,
    bot: Bot,
    answers: Callable[[int], dict[str, Any]],
    handler_name: str = "save-form",
    start: datetime | None = None,
    step: timedelta = timedelta(seconds=1),
) -> list[FormSubmission]:
    """``count`` submissions with their events and answers, in three bulk inserts.

    Submission ``i`` is received at ``start + i * step`` and answers ``answers(i)``.
    """
    start = start or timezone.now() - count * step
    events = WebhookEvent.objects.bulk_create(
        WebhookEvent(
            bot=bot,
            received_at=start + i * step,
            handler_name=handler_name,
            status=WebhookEvent.Status.PROCESSED,
            conversation_id=f"conv-{i}",
            user_id=f"user-{i}",
            delivery_id=str(uuid.uuid4()),
        )
        for i in range(count)
    )
    submissions = FormSubmission.objects.bulk_create(
        FormSubmission(
            event=event,
            bot=bot,
            handler_name=handler_name,
            conversation_id=event.conversation_id,
            user_id=event.user_id,
            submitted_at=event.received_at,
            received_at=event.received_at,
        )
        for event in events
    )
    FormAnswer.objects.bulk_create(
        FormAnswer(
            submission=submission,
            position=position,
            key=key,
            label=key.title(),
            value=value,
            value_text=value_as_text(value),
            received_at=submission.received_at,
        )
        for i, submission in enumerate(submissions)
        for position, (key, value) in enumerate(answers(i).items())
    )
    return submissions
