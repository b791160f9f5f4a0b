from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client


@pytest.fixture
def staff_client() -> Callable[..., Client]:
    """A client logged in as a staff user holding only ``perms`` (codenames)."""

    def make(*codenames: str) -> Client:
        user = User.objects.create_user("staff", password="x", is_staff=True)
        user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
        client = Client()
        client.force_login(user)
        return client

    return make
