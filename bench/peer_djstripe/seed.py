"""Set up, probe and check the peer's database, from the peer's venv.

    DJANGO_SETTINGS_MODULE=bench.peer_djstripe.settings DATABASE_URL=... \\
        bench/peer_djstripe/.venv/bin/python -m bench.peer_djstripe.seed \\
        {setup|sql|trap|check}

Prints one JSON object:

- ``setup``: the rows a deployed dj-stripe has after its endpoint was
  created from the admin: the Stripe account, its secret API key, and the
  webhook endpoint owned by it (signing secret, ``djstripe_uuid``, the
  default tolerance and ``verify_signature`` validation). Prints
  ``{"uuid", "secret", "path"}``.
- ``sql``: posts one signed ``balance.available`` delivery through Django's
  test client and prints its status and every SQL statement it ran.
- ``trap``: posts one ``product.updated`` delivery, whose handler calls the
  Stripe API: it must fail (500, the connection refused on the closed API
  port, recorded on its trigger), or a hidden call could have gone out.
- ``check``: counts the stored triggers and events, how many are valid and
  processed, and the first recorded exception, if any.
"""

from __future__ import annotations

import json
import secrets
import sys
import time


def setup() -> dict[str, str]:
    from django.conf import settings
    from djstripe.enums import APIKeyType
    from djstripe.models import Account, APIKey, WebhookEndpoint

    account = Account.objects.create(id="acct_benchpeer0000", livemode=False)
    APIKey.objects.create(
        secret=settings.STRIPE_TEST_SECRET_KEY,
        type=APIKeyType.secret,
        livemode=False,
        djstripe_owner_account=account,
    )
    endpoint = WebhookEndpoint.objects.create(
        id="we_benchpeer0000",
        livemode=False,
        djstripe_owner_account=account,
        api_version="2026-05-27.dahlia",
        enabled_events=["*"],
        secret=f"whsec_{secrets.token_hex(16)}",
        status="enabled",
        url="https://127.0.0.1/djstripe/webhook/",
    )
    return {
        "uuid": str(endpoint.djstripe_uuid),
        "secret": endpoint.secret,
        "path": f"/djstripe/webhook/{endpoint.djstripe_uuid}/",
    }


def _post(body: bytes) -> tuple[int, list[str]]:
    """Post ``body``, signed now, to the endpoint; its status and SQL."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from djstripe.models import WebhookEndpoint

    from bench.peer_djstripe.stripe_wire import stripe_signature

    endpoint = WebhookEndpoint.objects.get()
    signature = stripe_signature(endpoint.secret, body, timestamp=int(time.time()))
    client = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            f"/djstripe/webhook/{endpoint.djstripe_uuid}/",
            body,
            content_type="application/json",
            headers={"stripe-signature": signature},
        )
    return response.status_code, [q["sql"] for q in queries.captured_queries]


def sql() -> dict[str, object]:
    from bench.peer_djstripe.stripe_wire import balance_available_event

    body = balance_available_event("evt_sqlprobe", created=int(time.time()), amount=1)
    status, statements = _post(body)
    return {"status": status, "statements": statements}


def trap() -> dict[str, object]:
    """A ``product.updated`` delivery, whose handler re-fetches the product
    from Stripe: it must fail on the closed API port, proving the trap."""
    from djstripe.models import WebhookEventTrigger

    from bench.peer_djstripe.stripe_wire import API_VERSION

    event = {
        "id": "evt_trapprobe",
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": {"id": "prod_trap", "object": "product", "name": "x"}},
        "livemode": False,
        "request": {"id": None, "idempotency_key": None},
        "type": "product.updated",
    }
    status, _ = _post(json.dumps(event).encode())
    trigger = (
        WebhookEventTrigger.objects.filter(body__contains="evt_trapprobe")
        .order_by("-id")
        .first()
    )
    return {"status": status, "exception": trigger.exception}


def check() -> dict[str, object]:
    from djstripe.models import Event, WebhookEventTrigger

    triggers = WebhookEventTrigger.objects.all()
    failed = triggers.exclude(exception="").order_by("id").first()
    return {
        "triggers": triggers.count(),
        "valid_processed": triggers.filter(
            valid=True, processed=True, exception="", event__isnull=False
        ).count(),
        "events": Event.objects.count(),
        "event_types": sorted(Event.objects.values_list("type", flat=True).distinct()),
        "first_exception": failed.exception if failed else None,
    }


def main() -> int:
    import django

    django.setup()
    commands = {"setup": setup, "sql": sql, "trap": trap, "check": check}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.stderr.write(f"usage: seed.py {{{'|'.join(commands)}}}\n")
        return 2
    sys.stdout.write(json.dumps(commands[sys.argv[1]]()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
