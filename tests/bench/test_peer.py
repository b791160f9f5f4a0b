"""bench/peer.py's pieces that run without the benchmark: the Stripe wire and
the peer's pins."""

import hashlib
import hmac
import json
import re

from bench.common import ROOT
from bench.peer import PEER, stripe_deliveries_write
from bench.peer_djstripe.stripe_wire import (
    EVENT_TYPE,
    balance_available_event,
    stripe_signature,
)

SECRET = "whsec_test_secret"


def test_signature_matches_an_independently_computed_hmac():
    # printf '%s' '1795961625.{"id":"evt_test","type":"balance.available"}' \
    #   | openssl dgst -sha256 -hmac 'whsec_test_secret'
    body = b'{"id":"evt_test","type":"balance.available"}'
    assert stripe_signature(SECRET, body, timestamp=1795961625) == (
        "t=1795961625,"
        "v1=972ce312f398eee0ad421d8d0b30cf71ff7e06c132f7f668ab1f6dd72579287d"
    )


def test_signature_changes_with_the_body_the_time_and_the_secret():
    body = balance_available_event("evt_a", created=1, amount=1)
    signed = stripe_signature(SECRET, body, timestamp=100)
    assert signed != stripe_signature(SECRET, body + b" ", timestamp=100)
    assert signed != stripe_signature(SECRET, body, timestamp=101)
    assert signed != stripe_signature("whsec_other", body, timestamp=100)


def test_event_is_one_line_of_json_stripe_would_send():
    body = balance_available_event("evt_r0c160000001", created=1795961625, amount=7)
    assert b"\n" not in body
    assert b"\t" not in body
    event = json.loads(body)
    assert event["id"] == "evt_r0c160000001"
    assert event["object"] == "event"
    assert event["type"] == EVENT_TYPE == "balance.available"
    assert event["livemode"] is False
    assert event["data"]["object"]["object"] == "balance"
    assert event["data"]["object"]["available"][0]["amount"] == 7


def test_deliveries_file_has_distinct_events_each_correctly_signed(tmp_path):
    path = tmp_path / "deliveries.tsv"
    stripe_deliveries_write(path, count=5, secret=SECRET, tag="t0")
    lines = path.read_text().splitlines()
    assert len(lines) == 5
    ids = set()
    for line in lines:
        header, body = line.split("\t")
        timestamp, v1 = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", header).groups()
        expected = hmac.new(
            SECRET.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(v1, expected)
        ids.add(json.loads(body)["id"])
    assert len(ids) == 5


def _pins(path):
    pins = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "-r")):
            name, version = line.split("==")
            pins[name.split("[")[0].lower()] = version
    return pins


def test_peer_runs_the_projects_django_gunicorn_and_psycopg():
    ours, peer = _pins(ROOT / "requirements.txt"), _pins(PEER / "requirements.txt")
    for name in (
        "django",
        "gunicorn",
        "psycopg",
        "django-environ",
        "python-json-logger",
    ):
        assert peer[name] == ours[name], name
    assert "dj-stripe" in peer
    assert "dj-stripe" not in ours
