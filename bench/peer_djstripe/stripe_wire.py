"""Stripe's webhook wire, as the peer benchmark sends it: standard library only,
so both the project's venv (the driver, the tests) and the peer's import it.

A ``Stripe-Signature`` header is ``t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the endpoint's signing secret>`` (Stripe's "Verify
webhook signatures" docs; ``stripe.WebhookSignature.verify_header`` checks it
and that ``t`` is within the endpoint's tolerance, 300 s by default).
"""

from __future__ import annotations

import hashlib
import hmac
import json

#: The event type the benchmark delivers. dj-stripe registers no handler for
#: it (djstripe/event_handlers.py), so processing stores the Event and calls
#: no Stripe API: handled types re-fetch their object with ``api_retrieve``.
EVENT_TYPE = "balance.available"
#: dj-stripe 2.11.0's DjstripeSettings.DEFAULT_STRIPE_API_VERSION.
API_VERSION = "2026-05-27.dahlia"


def stripe_signature(secret: str, body: bytes, *, timestamp: int) -> str:
    """The ``Stripe-Signature`` header value for ``body`` signed at ``timestamp``."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def balance_available_event(event_id: str, *, created: int, amount: int) -> bytes:
    """A ``balance.available`` event as Stripe posts it, compact JSON."""
    funds = {"amount": amount, "currency": "usd", "source_types": {"card": amount}}
    event = {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": {
            "object": {
                "object": "balance",
                "available": [funds],
                "connect_reserved": [],
                "livemode": False,
                "pending": [{**funds, "amount": 0, "source_types": {"card": 0}}],
            }
        },
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": EVENT_TYPE,
    }
    return json.dumps(event, separators=(",", ":")).encode()
