"""Property-based: whatever the schema allows, no endpoint answers 5xx.

Schemathesis reads /api/schema/ from the WSGI application and generates
requests for every operation: the read API (with a token holding every
permission, over stored data) and the webhook endpoint (with a JWT signed by
the bot's secret, so requests get past the token check into parsing and
storage). Examples are capped to keep the run short: the suite runs twice in
CI.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from submissions.tokens import sign_token
from tests.factories import WebhookEventFactory, submission_with_answers

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 30


@pytest.fixture
def wsgi_app():
    """The project's WSGI application, as Django's test client runs it.

    Without this, each request's start and end close the database
    connection, which on PostgreSQL is the test's own transaction.
    """
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield get_wsgi_application()
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def api_schema(bot, exporter, wsgi_app):
    for n in range(3):
        submission_with_answers({"name": f"N{n}", "n": n}, event__bot=bot)
    WebhookEventFactory(bot=bot, status="rejected", error_code="invalid_json")
    config = schemathesis.Config()
    config.projects.default.update(parameters={"bot_slug": bot.slug})
    config.projects.default.generation.update(max_examples=MAX_EXAMPLES)
    return schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, bot, exporter):
    if case.path.startswith("/webhooks/"):
        headers = {"Authorization": f"Bearer {sign_token(bot.secret)}"}
    else:
        token, _ = Token.objects.get_or_create(user=exporter)
        headers = {"Authorization": f"Token {token.key}"}
    case.call_and_validate(
        headers=headers, checks=[not_a_server_error, status_code_conformance]
    )
