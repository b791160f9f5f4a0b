import json
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from handlers.registry import registry
from submissions.models import Bot
from submissions.selectors.bots import bot_cache_clear
from submissions.tokens import sign_token
from tests.factories import BotFactory


@pytest.fixture(scope="session", autouse=True)
def _plain_http(django_test_environment, tmp_path_factory):
    # Production defaults redirect HTTP to HTTPS; the test client and the live
    # server speak HTTP. Session-scoped so it precedes the live server, whose
    # middleware reads the setting once. The production static storage needs
    # `collectstatic`'s manifest; tests serve the files as they are
    # (tests/webhookproject/test_serving.py runs collectstatic and the real storage).
    # `def` handlers run in the test's own thread and transaction (a handler
    # thread could not see the test's uncommitted rows); the deadline tests
    # turn the threads back on, with transactional tests.
    with override_settings(
        WEBHOOKS={**settings.WEBHOOKS, "HANDLER_THREADS": 0},
        SECURE_SSL_REDIRECT=False,
        STATIC_ROOT=tmp_path_factory.mktemp("static"),
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {
                "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
            },
        },
    ):
        yield


@pytest.fixture(autouse=True)
def _no_cached_bots():
    # Each test's bots are rolled back with it, without a post_delete signal:
    # a bot cached by an earlier test must not answer for a new one.
    bot_cache_clear()


@pytest.fixture
def handler_registry():
    """The global registry, restored after the test so test handlers never leak."""
    saved = dict(registry._registry)
    yield registry
    registry._registry.clear()
    registry._registry.update(saved)


@pytest.fixture
def bot(db) -> Bot:
    return BotFactory(slug="demo", name="Demo bot")


@pytest.fixture
def api_client() -> APIClient:
    # CSRF enforced, as a browser session would be: proves the endpoint is exempt.
    return APIClient(enforce_csrf_checks=True)


Deliver = Callable[..., Any]


@pytest.fixture
def deliver(api_client: APIClient, bot: Bot) -> Deliver:
    """POST a delivery signed as logicdialog would sign it.

    ``payload`` is JSON-encoded unless ``body`` (bytes) is given; ``token``
    overrides the signed token (``None`` sends no Authorization header).
    """

    def _deliver(
        payload: Any = None,
        *,
        to: Bot | None = None,
        body: bytes | None = None,
        secret: str | None = None,
        token: str | object | None = ...,
        authorization: str | None = None,
        content_type: str = "application/json",
        digest: bool = True,
        **extra: Any,
    ):
        target = to or bot
        raw = body if body is not None else json.dumps(payload).encode()
        if token is ...:
            token = sign_token(secret or target.secret, body=raw if digest else None)
        headers = dict(extra)
        if authorization is not None:
            headers["HTTP_AUTHORIZATION"] = authorization
        elif token is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return api_client.generic(
            "POST",
            reverse("webhook", args=[target.slug]),
            data=raw,
            content_type=content_type,
            **headers,
        )

    return _deliver
