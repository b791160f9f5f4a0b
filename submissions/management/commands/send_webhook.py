import json
import urllib.error
import urllib.request
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from handlers.wire import build_payload
from submissions.conf import webhook_settings
from submissions.models import Bot
from submissions.tokens import sign_token


def parse_field(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise CommandError(f"-f takes key=value, not {text!r}.")
    return key, value


class Command(BaseCommand):
    help = (
        "Sign a delivery with a bot's JWT secret and POST it, as logicdialog would, "
        "then print the status and the reply."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "bot_slug", help="The bot's slug (its webhook URL ends with it)."
        )
        parser.add_argument("handler", help="The handler name, e.g. division-handler.")
        parser.add_argument(
            "-f",
            "--field",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A form value; repeat for each question.",
        )
        parser.add_argument(
            "--url",
            help="Where to post (default: the bot's URL under WEBHOOK_PUBLIC_BASE_URL).",
        )
        parser.add_argument(
            "--conversation", default="", help="Conversation id (default: random)."
        )
        parser.add_argument("--user", default="local-user", help="User id.")
        parser.add_argument("--id", default="", help="Delivery id (default: random).")
        parser.add_argument(
            "--timeout", type=float, default=10.0, help="Seconds to wait."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bot = Bot.objects.filter(slug=options["bot_slug"]).first()
        if bot is None:
            known = ", ".join(Bot.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(
                f"No bot with slug {options['bot_slug']!r}. Known bots: {known}."
            )
        fields = dict(parse_field(text) for text in options["field"])
        payload = build_payload(
            handler_name=options["handler"],
            form_values=fields or None,
            conversation_id=options["conversation"] or f"local-{uuid.uuid4().hex[:12]}",
            user_id=options["user"],
            delivery_id=options["id"] or str(uuid.uuid4()),
        )
        body = json.dumps(payload).encode()
        url = options["url"] or (
            webhook_settings().public_base_url + reverse("webhook", args=[bot.slug])
        )
        if not url.startswith(("http://", "https://")):
            raise CommandError(
                f"--url must be an http:// or https:// URL, not {url!r}."
            )
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {sign_token(bot.secret, body=body)}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=options["timeout"]) as answer:  # noqa: S310
                status, reply = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, reply = error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CommandError(
                f"Could not reach {url}: {reason}. Is the server running (`make run`)?"
            ) from None
        self.stdout.write(f"POST {url}")
        self.stdout.write(f"HTTP {status}")
        try:
            self.stdout.write(
                json.dumps(json.loads(reply), indent=2, ensure_ascii=False)
            )
        except ValueError:
            self.stdout.write(reply.decode("utf-8", "replace"))
        if status >= 400:
            raise CommandError(f"The webhook answered {status}.")
