"""The permission constants name permissions that exist."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from submissions import permissions

pytestmark = pytest.mark.django_db

DOTTED = {
    name: value
    for name, value in vars(permissions).items()
    if name.isupper() and isinstance(value, str) and "." in value
}


def test_every_dotted_constant_is_a_permission_in_the_database():
    existing = {
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.values_list(
            "content_type__app_label", "codename"
        )
    }

    assert len(DOTTED) == 6
    assert {
        name: value for name, value in DOTTED.items() if value not in existing
    } == {}


def test_every_custom_codename_is_declared_by_a_model():
    codenames = {
        value for name, value in vars(permissions).items() if name.endswith("_CODENAME")
    }
    declared = set(
        Permission.objects.filter(content_type__app_label="submissions").values_list(
            "codename", flat=True
        )
    )

    assert codenames
    assert codenames <= declared
