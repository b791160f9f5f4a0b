"""Handlers the bench scripts route deliveries to (soak, intake, slow)."""

import asyncio
import time

from handlers import ResponseBuilder, WebhookHandler, WebhookRequest, register


class SoakFailure(RuntimeError):
    """Raised on purpose by ``soak-fail``."""


@register
class SoakOk(WebhookHandler):
    name = "soak-ok"
    verbose_name = "Soak: replies"

    def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        response.add_text(f"Received {len(request.answers)} answers.")
        response.set_variable("delivery", request.delivery_id)


@register
class SoakFail(WebhookHandler):
    name = "soak-fail"
    verbose_name = "Soak: always raises"

    def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        raise SoakFailure(
            f"soak-fail raises on purpose (delivery {request.delivery_id})."
        )


#: How long the waiting handlers wait, as on a CRM or API call (bench/slow.py).
WAIT_SECONDS = 0.2


@register
class WaitSync(WebhookHandler):
    name = "bench-wait-sync"
    verbose_name = "Bench: waits 200 ms (def)"

    def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        time.sleep(WAIT_SECONDS)
        response.add_text("Looked it up.")


@register
class WaitAsync(WebhookHandler):
    name = "bench-wait-async"
    verbose_name = "Bench: waits 200 ms (async def)"

    async def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        await asyncio.sleep(WAIT_SECONDS)
        response.add_text("Looked it up.")


@register
class WaitForCopies(WebhookHandler):
    """Keeps a delivery in flight while its copies arrive (tests/submissions/test_copies.py)."""

    name = "bench-wait-300ms"
    verbose_name = "Bench: waits 300 ms, then replies with the delivery id"

    def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        time.sleep(0.3)
        response.add_text(f"Done with {request.delivery_id}.")
