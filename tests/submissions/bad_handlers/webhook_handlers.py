"""Handlers that raise what ``except Exception`` does not catch, and one that says its pid."""

import os

from handlers import ResponseBuilder, WebhookHandler, WebhookRequest, register


@register
class Exits(WebhookHandler):
    name = "exits"

    def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        raise SystemExit(1)


@register
class ExitsAsync(WebhookHandler):
    name = "exits-async"

    async def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        raise SystemExit(1)


@register
class Interrupts(WebhookHandler):
    name = "interrupts"

    def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        raise KeyboardInterrupt


@register
class InterruptsAsync(WebhookHandler):
    name = "interrupts-async"

    async def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        raise KeyboardInterrupt


@register
class Pid(WebhookHandler):
    name = "pid"

    def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        response.set_variable("pid", os.getpid())
