from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

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
