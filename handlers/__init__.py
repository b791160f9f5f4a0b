"""The handler mechanism: contract, registry and reply builder.

Write a handler in any installed app's ``webhook_handlers.py``::

    from handlers import ResponseBuilder, WebhookHandler, WebhookRequest, register

    @register
    class Greeter(WebhookHandler):
        name = "say-hello"

        def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
            response.add_text(f"Hello {request.form_values.get('name', 'there')}!")

This package never imports the project's models: it is a mechanism, like
``django.contrib.admin``.
"""

from handlers.base import Answer, WebhookHandler, WebhookRequest
from handlers.exceptions import (
    HandlerAlreadyRegistered,
    HandlerNotFound,
    InvalidHandler,
    InvalidHandlerName,
    InvalidReply,
    TransientError,
)
from handlers.registry import HandlerRegistry, register, registry
from handlers.responses import Button, ResponseBuilder

__all__ = [
    "Answer",
    "Button",
    "HandlerAlreadyRegistered",
    "HandlerNotFound",
    "HandlerRegistry",
    "InvalidHandler",
    "InvalidHandlerName",
    "InvalidReply",
    "ResponseBuilder",
    "TransientError",
    "WebhookHandler",
    "WebhookRequest",
    "register",
    "registry",
]
