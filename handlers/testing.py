"""A test kit for handler authors: a real signed delivery through the real endpoint.

In a pytest-django test (the ``db`` fixture is enough)::

    from handlers.testing import deliver

    def test_save_form_thanks_the_user(db):
        result = deliver("save-form", {"name": "Ann", "email": "ann@example.com"})
        assert result.status_code == 200
        assert result.texts == ["Thanks, Ann!"]
        assert result.event.submission.answers.count() == 2

``deliver`` signs the body with the bot's secret as logicdialog does, posts
it with Django's test client to the bot's webhook URL, and returns a
``Delivered``: the HTTP status, the parsed reply, and the stored
``WebhookEvent`` (with its submission, answers and runs). Everything on the
way is the production code: verification, storage, the registry, the
handler's deadline and fallback reply, the reply's rendering.

``def`` handlers run in the test's own thread by default, so they see the
test's rows and their writes roll back with it; they have no deadline
there (Python cannot stop a thread). ``threads=True`` runs them as in
production, in handler threads with their deadline: use it with
``transactional_db`` (or ``@pytest.mark.django_db(transaction=True)``) when
the handler touches the database. ``async def`` handlers always run as in
production, cancelled at their deadline.

Unlike the rest of ``handlers``, this module reaches the project's models
and URLs (as ``django.test`` reaches the test runner): it is imported only
by tests, and imports them when called.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

from handlers.wire import build_payload


@dataclass(frozen=True)
class Delivered:
    """What a delivery came to: the reply the bot got, and what was stored."""

    status_code: int
    #: The reply's JSON: ``{"blocks": [...], "variables": {...}}``, or
    #: ``{"error": ..., "detail": ...}``.
    reply: dict[str, Any]
    #: The stored delivery (``None`` only for an unknown bot: nothing stored).
    event: Any
    #: The test client's response, for headers.
    response: Any

    @property
    def texts(self) -> list[str]:
        """The text of every reply block that has some, in order."""
        return [b["text"] for b in self.reply.get("blocks", []) if "text" in b]

    @property
    def variables(self) -> dict[str, Any]:
        return self.reply.get("variables", {})


def deliver(
    handler_name: str,
    form_values: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    *,
    bot: Any = None,
    user_id: str | None = None,
    conversation_id: str | None = None,
    payload: Mapping[str, Any] | None = None,
    delivery_id: str | None = None,
    threads: bool = False,
    client: Client | None = None,
) -> Delivered:
    """Send one signed delivery for ``handler_name`` and return what came of it.

    ``form_values`` is ``{key: value}`` or a list of ``handlers.wire.answer_item``
    dicts. ``bot`` is a ``submissions.models.Bot``; a new one is created when
    none is given. ``payload`` replaces the whole body (its own spelling,
    say a captured real delivery; the other fields are then ignored). Each
    call is a new delivery unless ``delivery_id`` repeats one.
    """
    from submissions.conf import DEFAULTS
    from submissions.models import Bot, WebhookEvent
    from submissions.tokens import sign_token

    if bot is None:
        suffix = uuid.uuid4().hex[:12]
        bot = Bot.objects.create(name=f"Test bot {suffix}", slug=f"test-{suffix}")
    if payload is None:
        payload = build_payload(
            handler_name=handler_name,
            form_values=form_values,
            conversation_id=conversation_id or "test-conversation",
            user_id=user_id or "test-user",
            delivery_id=delivery_id or uuid.uuid4().hex,
        )
    body = json.dumps(payload).encode()
    token = sign_token(bot.secret, body=body)
    webhooks = getattr(settings, "WEBHOOKS", {})
    handler_threads = 0
    if threads:
        handler_threads = webhooks.get("HANDLER_THREADS") or DEFAULTS["HANDLER_THREADS"]
    with override_settings(WEBHOOKS={**webhooks, "HANDLER_THREADS": handler_threads}):
        response = (client or Client()).post(
            reverse("webhook", args=[bot.slug]),
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    event_id = response.headers.get("X-Webhook-Event-Id")
    event = (
        WebhookEvent.objects.select_related("bot").filter(pk=int(event_id)).first()
        if event_id and event_id.isdigit()
        else None
    )
    return Delivered(
        status_code=response.status_code,
        reply=json.loads(response.content or b"{}"),
        event=event,
        response=response,
    )
