"""Alerts against a hostile caller or a careless URL: SSRF, header injection, floods.

Webhook URLs that reach what only the server can are refused when saved in
the admin and again when sent (after DNS resolution, against a real
receiver on 127.0.0.1); names from outside never add an email header;
markup is escaped; 300 failing deliveries through the real endpoint cost
each the same few queries and make one alert (docs/hostile-input.md,
"Alerts").
"""

from __future__ import annotations

import email
import socket
from datetime import timedelta
from email import policy

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from alerts.checks import check_alert_settings
from alerts.conf import alert_settings
from alerts.models import (
    AlertKind,
    AlertRecipient,
    AlertRule,
    AlertState,
    Channel,
    SentAlert,
)
from handlers import WebhookHandler, register
from tests.alerts.conftest import OPS_EMAIL, time_passes, work_off_queue
from tests.alerts.factories import AlertRuleFactory
from tests.alerts.test_admin import ADD_RULE, rule_form
from tests.factories import BotFactory

pytestmark = pytest.mark.django_db(transaction=True)

PUBLIC_REFUSAL = "is not a public address"

#: Webhook URLs that must never receive an alert by default, however spelled.
PRIVATE_URLS = [
    "http://127.0.0.1/hook",
    "http://127.0.0.1:8000/hook",
    "http://127.1/hook",
    "http://127.255.255.254/hook",
    "http://2130706433/hook",  # decimal 127.0.0.1
    "http://0x7f000001/hook",  # hex
    "http://0x7f.1/hook",
    "http://0177.0.0.1/hook",  # octal
    "http://017700000001/hook",
    "http://[::1]/hook",
    "http://[0:0:0:0:0:0:0:1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
    "http://[::ffff:7f00:1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://[fe80::1]/hook",
    "http://[fe80::1%25eth0]/hook",
    "http://10.0.0.1/hook",
    "http://10.255.255.255/hook",
    "http://172.16.0.1/hook",
    "http://172.31.255.254/hook",
    "http://192.168.0.1/hook",
    "http://[fc00::1]/hook",
    "http://[fd12:3456::1]/hook",
    "http://100.64.0.1/hook",  # CGNAT
    "http://100.127.255.254/hook",
    "http://0.0.0.0/hook",
    "http://0/hook",
    "http://[::]/hook",
    "http://224.0.0.1/hook",  # multicast
    "http://255.255.255.255/hook",
    "http://198.18.0.1/hook",  # benchmarking
    "http://localhost/hook",
    "http://LOCALHOST./hook",
    "http://api.localhost/hook",
    "http://user:pass@127.0.0.1/hook",
    "https://hooks.slack.com@127.0.0.1/hook",  # userinfo that looks like a host
    "https://127.0.0.1/hook",
]
#: Schemes no alert is sent over.
BAD_SCHEMES = [
    "file:///etc/passwd",
    "ftp://files.example.com/x",
    "gopher://example.com:70/_x",
    "dict://example.com:11211/stat",
    "ldap://example.com/",
    "javascript:alert(1)",
    "data:text/plain,hello",
    "//example.com/hook",
    "HTTPX://example.com/hook",
]


def recipient_error(target: str) -> list[str]:
    """Validation messages for a webhook recipient with ``target`` (none: valid)."""
    recipient = AlertRecipient(
        rule=AlertRuleFactory(), channel=Channel.WEBHOOK, target=target
    )
    try:
        recipient.full_clean()
    except ValidationError as exc:
        return exc.message_dict["target"]
    return []


# --- at save ---------------------------------------------------------------------


@pytest.mark.parametrize("url", PRIVATE_URLS + BAD_SCHEMES)
def test_a_private_address_or_other_scheme_is_refused_when_saved(url, settings):
    settings.ALERTS = {}

    errors = recipient_error(url)

    assert errors, f"{url} was accepted"
    assert (
        errors[0] == "Enter a valid URL."
        or PUBLIC_REFUSAL in errors[0]
        or ("sent over http or https" in errors[0])
    ), errors


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/hook",
        "http://0x7f.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/hook",
    ],
)
def test_the_sentence_says_why_and_what_allows_it(url, settings):
    settings.ALERTS = {}

    (error,) = recipient_error(url)

    assert PUBLIC_REFUSAL in error
    assert "ALERTS_WEBHOOK_ALLOWED_NETWORKS" in error


def test_the_admin_refuses_a_private_webhook_with_the_sentence(admin_client, settings):
    settings.ALERTS = {}

    response = admin_client.post(
        ADD_RULE,
        rule_form(**{"recipients-1-target": "http://169.254.169.254/latest/"}),
    )

    assert response.status_code == 200  # the form again, with the error
    assert "is not a public address (169.254.169.254)" in response.content.decode()
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("networks", "url", "allowed"),
    [
        (["10.0.0.0/8"], "http://10.1.2.3/hook", True),
        (["10.0.0.0/8"], "http://192.168.0.1/hook", False),
        (["127.0.0.1/32"], "http://localhost:9000/hook", True),
        (["127.0.0.1"], "http://[::ffff:127.0.0.1]/hook", True),
        (["::1/128"], "http://[::1]/hook", True),
        (["fd00::/8"], "http://[fd12::1]/hook", True),
    ],
)
def test_the_setting_allows_the_networks_it_lists(networks, url, allowed, settings):
    settings.ALERTS = {"WEBHOOK_ALLOWED_NETWORKS": networks}

    assert (recipient_error(url) == []) is allowed


def test_public_webhooks_are_accepted(settings):
    settings.ALERTS = {}

    assert recipient_error("https://hooks.slack.com/services/T0/B0/XYZ") == []
    assert recipient_error("https://8.8.8.8/hook") == []
    assert recipient_error("https://[2001:4860:4860::8888]/hook") == []


def test_a_bad_network_in_the_setting_fails_loudly(settings):
    settings.ALERTS = {"WEBHOOK_ALLOWED_NETWORKS": ["10.0.0.0/8", "intranet"]}

    with pytest.raises(ImproperlyConfigured, match="'intranet', which is not a"):
        alert_settings()


def test_the_system_check_names_a_bad_network(settings):
    settings.ALERTS = {"WEBHOOK_ALLOWED_NETWORKS": ["10.0.0.0/33"]}

    (error,) = check_alert_settings()
    assert error.id == "alerts.E003"
    assert "'10.0.0.0/33', which is not a network" in error.msg


def test_the_setting_reads_a_comma_separated_string(settings):
    settings.ALERTS = {"WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/8, fd00::/8"}

    assert [str(n) for n in alert_settings().webhook_allowed_networks] == [
        "10.0.0.0/8",
        "fd00::/8",
    ]


# --- at send ---------------------------------------------------------------------

UNROUTED = {"handler": "no-such-handler"}


def send_one_alert(deliver, url: str) -> SentAlert:
    """An unrouted delivery through the endpoint, its alert to ``url``, one attempt.

    The recipient is stored without validation, as a shell, a fixture or a
    row saved before this check would be: the send must refuse on its own.
    """
    rule = AlertRuleFactory(kind=AlertKind.UNKNOWN_HANDLER)
    AlertRecipient.objects.create(rule=rule, channel=Channel.WEBHOOK, target=url)
    assert deliver(UNROUTED).status_code == 404
    work_off_queue()
    return SentAlert.objects.get()


def test_a_loopback_receiver_is_not_sent_to_by_default(
    deliver, bot, receiver, settings
):
    settings.ALERTS = {}

    alert = send_one_alert(deliver, receiver.url)

    assert receiver.requests == []
    assert (alert.status, alert.attempts) == ("failed", 1)  # never retried
    assert PUBLIC_REFUSAL in alert.error
    assert "(127.0.0.1)" in alert.error


def test_the_setting_lets_the_same_receiver_get_it(deliver, bot, receiver, settings):
    settings.ALERTS = {"WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"]}

    alert = send_one_alert(deliver, receiver.url)

    assert alert.status == "sent"
    assert len(receiver.requests) == 1
    assert receiver.requests[0].body == alert.payload


@pytest.fixture
def resolver(monkeypatch):
    """DNS, the outside world: names resolve to what the test says, calls counted."""
    answers: dict[str, list[list[str]]] = {}
    calls: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        calls.append(host)
        queue = answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, calls


def test_a_name_that_resolves_to_loopback_is_refused_after_resolution(
    deliver, bot, receiver, resolver, settings
):
    settings.ALERTS = {}
    answers, _ = resolver
    answers["hooks.attacker.example"] = [["127.0.0.1"]]
    url = receiver.url.replace("127.0.0.1", "hooks.attacker.example")
    assert recipient_error(url) == []  # nothing is looked up when saving

    alert = send_one_alert(deliver, url)

    assert receiver.requests == []
    assert alert.status == "failed"
    assert "The host 'hooks.attacker.example' is not a public address (127.0.0.1)" in (
        alert.error
    )


def test_an_https_name_is_checked_after_resolution_too(
    deliver, bot, receiver, resolver, settings
):
    settings.ALERTS = {}
    answers, calls = resolver
    answers["secure.attacker.example"] = [["::1"]]

    alert = send_one_alert(deliver, "https://secure.attacker.example:8443/hook")

    assert calls == ["secure.attacker.example"]
    assert alert.status == "failed"
    assert "is not a public address (::1)" in alert.error


def test_one_private_address_among_public_ones_refuses_the_name(
    deliver, bot, receiver, resolver, settings
):
    settings.ALERTS = {}
    answers, _ = resolver
    answers["mixed.example"] = [["93.184.215.14", "10.0.0.5"]]

    alert = send_one_alert(deliver, "http://mixed.example/hook")

    assert alert.status == "failed"
    assert "(10.0.0.5)" in alert.error


def test_the_connection_goes_to_the_address_that_was_checked(
    deliver, bot, receiver, resolver, settings
):
    """DNS rebinding: a second lookup would answer differently; there is none."""
    settings.ALERTS = {"WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.1/32"]}
    answers, calls = resolver
    # Checked: 127.0.0.1 (allowed here). Any later lookup: the metadata service.
    answers["rebind.example"] = [["127.0.0.1"], ["169.254.169.254"]]
    url = receiver.url.replace("127.0.0.1", "rebind.example")

    alert = send_one_alert(deliver, url)

    assert alert.status == "sent"
    assert calls == ["rebind.example"]  # resolved once, connected to that answer
    (received,) = receiver.requests
    assert (
        received.headers["Host"] == f"rebind.example:{url.split(':')[2].split('/')[0]}"
    )


def test_a_redirect_to_a_private_address_is_not_followed(
    deliver, bot, receiver, settings
):
    receiver.answers = [(302, 0)]  # Location: https://elsewhere.example.com/

    alert = send_one_alert(deliver, receiver.url)

    assert len(receiver.requests) == 1
    assert alert.status == "failed"
    assert "a redirect" in alert.error


def test_no_proxy_from_the_environment_carries_the_webhook(
    deliver, bot, receiver, monkeypatch
):
    # A proxy would connect to a host this process never checked.
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("http_proxy", "http://10.9.9.9:3128")

    alert = send_one_alert(deliver, receiver.url)

    assert alert.status == "sent"
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "gopher://127.0.0.1:6379/_FLUSHALL", "http://0x7f.1/"],
)
def test_other_schemes_and_spellings_are_refused_at_send(deliver, bot, url, settings):
    settings.ALERTS = {}

    alert = send_one_alert(deliver, url)

    assert alert.status == "failed"
    assert alert.attempts == 1
    assert "http or https" in alert.error or PUBLIC_REFUSAL in alert.error


# --- emails and markup -----------------------------------------------------------

INJECTED = "x\r\nBcc: evil@example.com\r\nSubject: hi\n\nbody"


def test_names_from_outside_add_no_email_header(deliver, mailoutbox, make_rule):
    bot = BotFactory(slug="crlf", name=f"Bot{INJECTED}")
    make_rule(AlertKind.UNKNOWN_HANDLER, name=f"Rule{INJECTED}")
    for handler in (f"h{INJECTED}", "h\u2028Bcc: a@b.c", "h\x85Bcc: a@b.c"):
        AlertState.objects.all().delete()  # a new window for each
        assert deliver({"handler": handler}, to=bot).status_code == 404
        work_off_queue()

    assert len(mailoutbox) == 3
    for message in mailoutbox:
        assert "\r" not in message.subject
        assert "\n" not in message.subject
        assert message.recipients() == [OPS_EMAIL]
        raw = message.message().as_bytes()
        parsed = email.message_from_bytes(raw, policy=policy.default)
        assert parsed.get_all("Bcc") is None
        assert parsed.get_all("Subject") == [parsed["Subject"]]
        assert "evil@example.com" not in parsed["To"]


def test_a_recipient_with_a_line_break_is_refused_when_saved_and_when_sent(
    deliver, bot, mailoutbox
):
    rule = AlertRuleFactory(kind=AlertKind.UNKNOWN_HANDLER)
    bad = "ops@example.com\r\nBcc: evil@example.com"
    with pytest.raises(ValidationError):
        AlertRecipient(rule=rule, channel=Channel.EMAIL, target=bad).full_clean()
    AlertRecipient.objects.create(rule=rule, channel=Channel.EMAIL, target=bad)

    assert deliver(UNROUTED).status_code == 404
    work_off_queue()

    assert mailoutbox == []
    alert = SentAlert.objects.get()
    assert (alert.status, alert.attempts) == ("failed", 1)  # not retried
    assert "holds a line break" in alert.error


def test_markup_in_names_is_escaped_in_the_admin_and_the_webhook_text(
    deliver, admin_client, make_rule, receiver
):
    bot = BotFactory(slug="markup", name="<img src=x onerror=alert(1)>")
    make_rule(AlertKind.UNKNOWN_HANDLER, webhook=receiver.url)
    assert deliver({"handler": "<script>alert(1)</script>"}, to=bot).status_code == 404
    work_off_queue()

    (text,) = [r.body["text"] for r in receiver.requests]
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    assert "<img" not in text
    for alert in SentAlert.objects.all():
        page = admin_client.get(
            reverse("admin:alerts_sentalert_change", args=[alert.pk])
        ).content.decode()
        assert "<script>alert(1)" not in page
        assert "<img src=x" not in page
        listing = admin_client.get(reverse("admin:alerts_sentalert_changelist"))
        assert "<img src=x" not in listing.content.decode()


# --- a flood of failures ---------------------------------------------------------

FLOOD = 300
#: The task queue's own reads and writes, the event, the rules and the state.
WORKER_QUERIES_PER_INCIDENT = 20  # 16 today
EXPLODE = {"handler": "explode", "formValues": {"q": "a"}}


@pytest.fixture
def exploding(handler_registry):
    @register
    class Exploding(WebhookHandler):
        name = "explode"

        def handle(self, request, response):
            raise RuntimeError("CRM is down")


def test_a_flood_of_failures_costs_each_delivery_the_same_queries_and_one_alert(
    deliver, bot, exploding, make_rule, receiver, mailoutbox, settings
):
    # The rules are read again once per RULE_CACHE_SECONDS (30 s): one query
    # per process and period, not per delivery; a slow run must not see it.
    settings.ALERTS = {**settings.ALERTS, "RULE_CACHE_SECONDS": 3600}
    # Likewise the bot, read again every BOT_CACHE_SECONDS (5 s) per process.
    settings.WEBHOOKS = {**settings.WEBHOOKS, "BOT_CACHE_SECONDS": 3600}
    make_rule(AlertKind.HANDLER_FAILING, webhook=receiver.url)
    queries = []
    for _ in range(FLOOD):
        with CaptureQueriesContext(connection) as captured:
            assert deliver(EXPLODE).status_code == 500
        queries.append(len(captured))
    # The alert's share: one queued task row per failing delivery, no more.
    assert len(set(queries[1:])) == 1, sorted(set(queries))
    task_inserts = [
        q["sql"]
        for q in captured.captured_queries
        if "django_tasks_database" in q["sql"]
    ]
    assert len(task_inserts) == 1

    with CaptureQueriesContext(connection) as worker:
        work_off_queue()

    assert len(mailoutbox) == 1
    assert len(receiver.requests) == 1
    # The worker too: a fixed handful of queries per incident, not a growing one.
    assert len(worker) < FLOOD * WORKER_QUERIES_PER_INCIDENT, len(worker) / FLOOD
    state = AlertState.objects.get()
    assert state.pending_count == FLOOD - 1  # counted, held back

    time_passes(timedelta(minutes=16))
    assert deliver(EXPLODE).status_code == 500
    work_off_queue()

    assert len(mailoutbox) == 2
    assert f"{FLOOD - 1} more failures since the last alert" in mailoutbox[1].body
    assert SentAlert.objects.count() == 4  # two windows, two recipients


def test_without_a_rule_a_failing_delivery_queues_nothing(deliver, bot, exploding):
    with CaptureQueriesContext(connection) as captured:
        assert deliver(EXPLODE).status_code == 500

    assert not [q for q in captured.captured_queries if "django_tasks" in q["sql"]]
