"""Staff reads from the replica (webhookproject/replica.py).

The replica here is a second alias of the test database
(``TEST: {"MIRROR": "default"}``): its own connection, so each query shows
which alias ran it. Transactional tests, since a mirror's connection sees
only committed rows. The fallback tests point the alias at a closed port
(PostgreSQL) or a file that cannot be opened (SQLite).
"""

from __future__ import annotations

import copy
import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.core import signing
from django.db import connections, router, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.authtoken.models import Token

from submissions.models import Bot, WebhookEvent
from submissions.tokens import sign_token
from tests.factories import BotFactory, WebhookEventFactory, submission_with_answers
from tests.webhookproject.test_serving import free_port
from webhookproject import replica
from webhookproject.replica import PIN_COOKIE, PIN_SALT, REPLICA, reads_from_replica

# The alias exists before the test databases are set up, so Django makes it a
# mirror of the test database; it is used only where the router is installed.
if REPLICA not in connections.settings:
    _mirror = copy.deepcopy(connections["default"].settings_dict)
    _mirror["OPTIONS"].pop("pool", None)  # as settings.py configures a replica
    _mirror["CONN_MAX_AGE"] = 0
    _mirror["TEST"] = {**_mirror["TEST"], "MIRROR": "default"}
    connections.settings[REPLICA] = _mirror

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])

EVENTS = "submissions_webhookevent"


@pytest.fixture(autouse=True)
def replica_on(settings):
    settings.DATABASE_ROUTERS = ["webhookproject.replica.ReplicaRouter"]
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[:3],
        "webhookproject.replica.ReplicaReadsMiddleware",
        *settings.MIDDLEWARE[3:],
    ]
    assert settings.MIDDLEWARE[2] == "webhookproject.edge.EdgeMiddleware"
    settings.DATABASE_REPLICA_PIN_SECONDS = 30
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 10.0
    settings.DATABASE_REPLICA_CHECK_SECONDS = 60.0
    replica.health.reset()
    saved = dict(connections[REPLICA].settings_dict)
    yield
    connections[REPLICA].close()
    connections[REPLICA].settings_dict.clear()
    connections[REPLICA].settings_dict.update(saved)
    replica.health.reset()


@pytest.fixture
def unreachable_replica():
    if connections[REPLICA].vendor == "postgresql":
        connections[REPLICA].settings_dict.update(HOST="127.0.0.1", PORT=free_port())
        connections[REPLICA].settings_dict["OPTIONS"]["connect_timeout"] = 2
    else:
        connections[REPLICA].settings_dict["NAME"] = "/nonexistent/dir/replica.sqlite3"
    # After the change: SQLite ignores closing an in-memory database.
    connections[REPLICA].close()


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser(
        "ops", "ops@example.com", "pw-0123456789"
    )
    client.force_login(user)
    client.user = user
    return client


class Queries:
    """The statements each alias ran inside the block."""

    def __init__(self, *aliases: str) -> None:
        self.aliases = aliases or ("default", REPLICA)

    def __enter__(self) -> Queries:
        self._contexts = {
            alias: CaptureQueriesContext(connections[alias]) for alias in self.aliases
        }
        for context in self._contexts.values():
            context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for context in self._contexts.values():
            context.__exit__(*exc)

    def on(self, alias: str, table: str = "") -> list[str]:
        return [
            q["sql"]
            for q in self._contexts[alias].captured_queries
            if table in q["sql"]
        ]


def changelist():
    return reverse("admin:submissions_webhookevent_changelist")


# -- routing ------------------------------------------------------------------------


def test_the_router_sends_only_staff_reads_outside_transactions_to_the_replica():
    assert router.db_for_read(WebhookEvent) == "default"  # worker, commands, webhooks
    with reads_from_replica():
        assert router.db_for_read(WebhookEvent) == REPLICA
        assert router.db_for_write(WebhookEvent) == "default"
        with transaction.atomic():
            assert router.db_for_read(WebhookEvent) == "default"
    assert router.db_for_read(WebhookEvent) == "default"
    assert router.allow_migrate("default", "submissions") is True
    assert router.allow_migrate(REPLICA, "submissions") is False


def test_the_admin_changelist_reads_from_the_replica(staff):
    WebhookEventFactory(bot=BotFactory(name="Mirror bot"))
    with Queries() as queries:
        response = staff.get(changelist())
    assert response.status_code == 200
    assert "Mirror bot" in response.content.decode()
    assert queries.on(REPLICA, EVENTS)
    assert not queries.on("default", EVENTS)


def test_the_console_overview_reads_from_the_replica(staff):
    WebhookEventFactory()
    with Queries() as queries:
        response = staff.get(reverse("admin:overview"))
    assert response.status_code == 200
    assert queries.on(REPLICA, EVENTS)
    assert not queries.on("default", EVENTS)


def test_the_admin_export_streams_from_the_replica(staff):
    submission_with_answers({"email": "mirror@example.com"})
    with Queries() as queries:
        response = staff.get(reverse("admin:submissions_formsubmission_export"))
        body = b"".join(response.streaming_content).decode()
        response.close()
    assert response.status_code == 200
    assert "mirror@example.com" in body
    assert queries.on(REPLICA, "submissions_formanswer")
    assert not queries.on("default", "submissions_formanswer")


def test_the_read_api_and_its_csv_read_from_the_replica(client):
    submission_with_answers({"email": "api@example.com"})
    user = get_user_model().objects.create_superuser("api", "a@example.com", "pw-1")
    token = Token.objects.create(user=user).key
    with Queries() as queries:
        listing = client.get("/api/submissions/", HTTP_AUTHORIZATION=f"Token {token}")
        csv = client.get(
            "/api/submissions/?format=csv", HTTP_AUTHORIZATION=f"Token {token}"
        )
        csv_body = b"".join(csv.streaming_content).decode()
        csv.close()
    assert listing.status_code == 200
    assert listing.json()["results"][0]["answers"]
    assert "api@example.com" in csv_body
    assert queries.on(REPLICA, "submissions_formsubmission")
    assert not queries.on("default", "submissions_formsubmission")


def test_a_delivery_never_touches_the_replica(client):
    bot = BotFactory(slug="mirrored")
    body = json.dumps({"handler": "save-form", "formValues": {"a": "1"}}).encode()
    with Queries() as queries:
        response = client.post(
            reverse("webhook", args=[bot.slug]),
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {sign_token(bot.secret, body=body)}",
        )
    assert response.status_code == 200
    assert WebhookEvent.objects.get().status == "processed"
    assert queries.on("default", EVENTS)
    assert queries.on(REPLICA) == []


# -- pinning --------------------------------------------------------------------------


def test_a_write_pins_the_writer_to_the_primary(staff, settings):
    bot = BotFactory(name="Before", slug="pin")
    url = reverse("admin:submissions_bot_change", args=[bot.pk])
    form = staff.get(url)  # a change form runs in a transaction: the primary
    assert form.status_code == 200
    data = {
        "name": "After",
        "slug": "pin",
        "is_active": "on",
        "secret": bot.secret,
        "previous_secret": "",
        "_save": "Save",
    }
    data.update(
        {
            k: v
            for k, v in form.context["adminform"].form.initial.items()
            if k not in data and isinstance(v, str)
        }
    )
    with Queries() as writing:
        saved = staff.post(url, data)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert Bot.objects.get(pk=bot.pk).name == "After"
    assert writing.on(REPLICA) == []
    cookie = saved.cookies[PIN_COOKIE]
    assert cookie["max-age"] == settings.DATABASE_REPLICA_PIN_SECONDS
    assert cookie["httponly"]

    with Queries() as pinned:
        listing = staff.get(reverse("admin:submissions_bot_changelist"))
    assert "After" in listing.content.decode()
    assert pinned.on(REPLICA) == []
    assert pinned.on("default", "submissions_bot")

    # Once the pin is older than DATABASE_REPLICA_PIN_SECONDS: the replica again.
    signer = signing.get_cookie_signer(salt=PIN_COOKIE + PIN_SALT)
    signer.timestamp = lambda: signing.b62_encode(int(time.time()) - 31)
    staff.cookies[PIN_COOKIE] = signer.sign("1")
    with Queries() as expired:
        staff.get(reverse("admin:submissions_bot_changelist"))
    assert expired.on(REPLICA, "submissions_bot")
    assert not expired.on("default", "submissions_bot")


def test_a_forged_pin_is_ignored(staff):
    staff.cookies[PIN_COOKIE] = "1:forged:signature"
    with Queries() as queries:
        staff.get(changelist())
    assert queries.on(REPLICA, EVENTS)


def test_a_delivery_sets_no_pin(client):
    bot = BotFactory(slug="nopin")
    body = json.dumps({"handler": "save-form", "formValues": {"a": "1"}}).encode()
    response = client.post(
        reverse("webhook", args=[bot.slug]),
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {sign_token(bot.secret, body=body)}",
    )
    assert response.status_code == 200
    assert PIN_COOKIE not in response.cookies


# -- health and fallback -----------------------------------------------------------------


def test_the_replica_is_checked_at_most_once_per_interval():
    first = replica.health.state()
    assert first.usable
    with Queries() as queries:
        again = replica.health.state()
    assert again is first
    assert queries.on(REPLICA) == []


def test_an_unreachable_replica_falls_back_to_the_primary(staff, unreachable_replica):
    WebhookEventFactory(bot=BotFactory(name="Fallback bot"))
    with Queries("default") as queries:
        response = staff.get(changelist())
    assert response.status_code == 200
    assert "Fallback bot" in response.content.decode()
    assert queries.on("default", EVENTS)

    ready = staff.get("/readyz")
    assert ready.status_code == 200  # the primary serves: still ready
    assert ready.json()["replica"] == {
        "reads": "primary",
        "reachable": False,
        "lag_seconds": None,
        "max_lag_seconds": 10.0,
    }


def test_a_replica_lost_between_checks_costs_one_retry_not_an_error(
    staff, unreachable_replica
):
    # The last check found it well; it went away since.
    replica.health._state = replica.ReplicaState(
        reachable=True, lag_seconds=0.0, checked_at=time.monotonic()
    )
    WebhookEventFactory(bot=BotFactory(name="Retried bot"))
    response = staff.get(changelist())
    assert response.status_code == 200
    assert "Retried bot" in response.content.decode()
    assert replica.health.state().reachable is False


def test_a_lagging_replica_falls_back_and_readyz_says_so(staff, settings):
    settings.DATABASE_REPLICA_MAX_LAG_SECONDS = -1.0  # any lag is too much
    WebhookEventFactory()
    with Queries() as queries:
        staff.get(changelist())
    assert queries.on(REPLICA, EVENTS) == []
    assert queries.on("default", EVENTS)
    body = staff.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["replica"]["reads"] == "primary"
    assert body["replica"]["reachable"] is True
    assert body["replica"]["lag_seconds"] == 0.0


def test_readyz_reports_a_healthy_replica(client):
    body = client.get("/readyz").json()
    assert body["replica"] == {
        "reads": "replica",
        "reachable": True,
        "lag_seconds": 0.0,
        "max_lag_seconds": 10.0,
    }
