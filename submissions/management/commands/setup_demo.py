import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from submissions.conf import webhook_settings
from submissions.models import Bot

DEMO_SLUG = "demo"
ADMIN_USERNAME = "admin"


def password_file() -> Path:
    return Path(settings.BASE_DIR) / ".demo-admin-password"


class Command(BaseCommand):
    help = (
        "Create, once, a demo bot and a local admin account, then print the webhook "
        "URL, the bot's JWT secret and the admin login. For local development."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--force", action="store_true", help="Run even when DJANGO_DEBUG is off."
        )

    def handle(self, *args: Any, force: bool = False, **options: Any) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "setup_demo creates a local admin account and is meant for development "
                "(DJANGO_DEBUG=true). Pass --force to run it anyway."
            )
        bot, _ = Bot.objects.get_or_create(
            slug=DEMO_SLUG, defaults={"name": "Demo bot"}
        )
        password = self._admin_password()
        base = webhook_settings().public_base_url
        style = self.style
        self.stdout.write(style.SUCCESS("logicdialog webhook receiver is ready."))
        self.stdout.write(
            f"  Webhook URL:     {base}{reverse('webhook', args=[bot.slug])}"
        )
        self.stdout.write(f"  JWT secret:      {bot.secret}")
        self.stdout.write(f"  Admin:           {base}{reverse('admin:index')}")
        self.stdout.write(f"  Admin login:     {ADMIN_USERNAME} / {password}")
        self.stdout.write(
            f"  Try it:          .venv/bin/python manage.py send_webhook {bot.slug} "
            "division-handler -f dividend=10 -f divisor=4"
        )

    def _admin_password(self) -> str:
        User = get_user_model()
        path = password_file()
        if User.objects.filter(username=ADMIN_USERNAME).exists():
            if path.exists():
                return path.read_text().strip()
            return "(set earlier; reset it with `manage.py changepassword admin`)"
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(ADMIN_USERNAME, email="", password=password)
        path.write_text(password + "\n")
        os.chmod(path, 0o600)
        return password
