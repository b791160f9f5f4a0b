"""setup_demo: one demo bot and admin, in development only."""

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from submissions.management.commands.setup_demo import password_file
from submissions.models import Bot


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def demo_password_file(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    settings.DEBUG = True
    return password_file()


@pytest.mark.django_db
def test_setup_demo_creates_once_and_prints_the_same_login(demo_password_file):
    first = run("setup_demo")
    second = run("setup_demo")
    bot = Bot.objects.get(slug="demo")
    assert Bot.objects.count() == 1
    assert (
        get_user_model().objects.filter(username="admin", is_superuser=True).count()
        == 1
    )
    password = demo_password_file.read_text().strip()
    for output in (first, second):
        assert "http://127.0.0.1:8000/webhooks/demo/" in output
        assert bot.secret in output
        assert f"admin / {password}" in output
    assert oct(demo_password_file.stat().st_mode & 0o777) == "0o600"
    user = get_user_model().objects.get(username="admin")
    assert user.check_password(password)
    assert user.has_perm("submissions.export_formsubmission")


@pytest.mark.django_db
def test_setup_demo_refuses_without_debug(demo_password_file, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DJANGO_DEBUG"):
        run("setup_demo")
    assert not Bot.objects.exists()
    assert re.search(r"ready", run("setup_demo", "--force"))
