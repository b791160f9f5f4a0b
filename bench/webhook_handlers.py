"""Handlers the soak script routes deliveries to."""

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
