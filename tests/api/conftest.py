from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from submissions.models import WebhookEvent
from tests.api.helpers import T0
from tests.factories import BotFactory, WebhookEventFactory, submission_with_answers

VIEW_PERMISSIONS = (
    "submissions.view_formsubmission",
    "submissions.view_webhookevent",
)
EXPORT_PERMISSION = "submissions.export_formsubmission"

MakeUser = Callable[..., User]


@pytest.fixture
def make_user(db) -> MakeUser:
    """A user holding exactly ``perms`` (``"app_label.codename"``)."""

    def _make(username: str, *perms: str, is_staff: bool = False) -> User:
        user = User.objects.create_user(username, password="a long password 123")
        user.is_staff = is_staff
        user.save()
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(
                    content_type__app_label=app_label, codename=codename
                )
            )
        return User.objects.get(pk=user.pk)  # fresh permission cache

    return _make


def token_client(user: User) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def reader(make_user: MakeUser) -> User:
    """May view submissions and events, not export."""
    return make_user("reader", *VIEW_PERMISSIONS)


@pytest.fixture
def exporter(make_user: MakeUser) -> User:
    return make_user("exporter", *VIEW_PERMISSIONS, EXPORT_PERMISSION)


@pytest.fixture
def client_for_reader(reader: User) -> APIClient:
    return token_client(reader)


@pytest.fixture
def client_for_exporter(exporter: User) -> APIClient:
    return token_client(exporter)


@pytest.fixture
def event_rows(bot):
    """Three events of two bots, a day apart: processed, failed, rejected."""
    other = BotFactory(slug="other")
    return {
        "processed": submission_with_answers(
            {"name": "Ada"},
            event__bot=bot,
            event__received_at=T0,
            event__conversation_id="conv-a",
            event__user_id="user-a",
            event__delivery_id="d-1",
        ).event,
        "failed": WebhookEventFactory(
            bot=bot,
            status=WebhookEvent.Status.FAILED,
            handler_name="division-handler",
            received_at=T0 + timedelta(days=1),
        ),
        "rejected": WebhookEventFactory(
            bot=other,
            status=WebhookEvent.Status.REJECTED,
            handler_name="",
            received_at=T0 + timedelta(days=2),
            conversation_id="conv-b",
        ),
    }


@pytest.fixture
def submission_rows(bot):
    """Four submissions of two bots and two forms over three days."""
    other = BotFactory(slug="other", secret="other-bot-secret-value")
    return {
        "early": submission_with_answers(
            {"name": "Ada", "topics": ["billing", "api"]},
            event__bot=bot,
            event__received_at=T0,
            event__conversation_id="conv-a",
            event__user_id="user-a",
        ),
        "late": submission_with_answers(
            {"name": "Bob"},
            event__bot=bot,
            event__received_at=T0 + timedelta(days=2),
            event__conversation_id="conv-b",
        ),
        "division": submission_with_answers(
            {"dividend": 10, "divisor": -4},
            event__bot=bot,
            event__handler_name="division-handler",
            event__received_at=T0 + timedelta(days=1),
        ),
        "other": submission_with_answers(
            {"name": "Cy"}, event__bot=other, event__received_at=T0
        ),
    }
