"""Masking (submissions/masking.py): what is sensitive, and what of it is shown."""

import pytest
from django.contrib.auth.models import AnonymousUser, Permission

from submissions.masking import can_see_sensitive, is_sensitive, mask_value
from tests.factories import UserFactory


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("zoe@example.com", "z***@example.com"),
        ("+44 20 7946 0123", "+44 *** *** 123"),
        ("07946 000123", "*** *** 123"),
        ("Ada Lovelace", "A***"),
        (12345678, "*** *** 678"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_value(value, masked):
    assert mask_value(value) == masked


@pytest.mark.parametrize(
    ("key", "input_type", "sensitive"),
    [
        ("email", "", True),
        ("EMAIL", "", True),  # keys compare case-insensitively
        ("contact", "email", True),
        ("contact", "TEL", True),
        ("phone_number", "text", True),
        ("name", "text", False),
        ("emails", "", False),  # a key is one of the list, not a substring
    ],
)
def test_is_sensitive(key, input_type, sensitive):
    assert is_sensitive(key=key, input_type=input_type) is sensitive


def test_is_sensitive_follows_the_settings(settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "SENSITIVE_KEYS": ["postcode"]}

    assert is_sensitive(key="Postcode")
    assert not is_sensitive(key="email")
    assert is_sensitive(key="x", input_type="email")  # types are a separate list


def test_a_mask_keeps_nothing_of_the_middle_of_a_value():
    masked = mask_value("margaret.hamilton@nasa.example")

    assert masked == "m***@nasa.example"
    assert "hamilton" not in masked


@pytest.mark.django_db
def test_only_holders_of_the_permission_see_sensitive_answers():
    user = UserFactory()
    assert not can_see_sensitive(user)
    assert not can_see_sensitive(AnonymousUser())
    assert not can_see_sensitive(None)

    user.user_permissions.add(Permission.objects.get(codename="view_sensitive_answers"))
    user = type(user).objects.get(pk=user.pk)  # a fresh permission cache

    assert can_see_sensitive(user)
