"""The handler registry: one handler class per logicdialog handler name.

    from handlers import WebhookHandler, register

    @register
    class Divide(WebhookHandler):
        name = "division-handler"
        def handle(self, request, response): ...

``register`` validates at import time and fails loudly:

- ``InvalidHandler`` when the class is not a ``WebhookHandler`` subclass or
  does not override ``handle``;
- ``InvalidHandlerName`` when ``name`` is missing or not made of letters,
  digits, ``-``, ``_`` and ``.``;
- ``HandlerAlreadyRegistered`` when a *different* class (by module and
  qualified name) already holds the name. Registering the same class again,
  as a module reload does, is harmless.

``registry.get(name)`` returns the class or raises ``HandlerNotFound`` (a
``LookupError``) naming the key and the close matches. Modules named
``webhook_handlers`` in installed apps are imported at startup by
``HandlersConfig.ready()``.
"""

from __future__ import annotations

import difflib
import inspect
from typing import TypeVar

from handlers.base import HANDLER_NAME_RE, WebhookHandler
from handlers.exceptions import (
    HandlerAlreadyRegistered,
    HandlerNotFound,
    InvalidHandler,
    InvalidHandlerName,
)

H = TypeVar("H", bound=type[WebhookHandler])


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class HandlerRegistry:
    def __init__(self) -> None:
        # The attribute name matters: autodiscover_modules(register_to=...)
        # snapshots and restores `_registry` when an import fails.
        self._registry: dict[str, type[WebhookHandler]] = {}

    def register(self, handler_class: H) -> H:
        """Register ``handler_class`` under its ``name``; returns it unchanged."""
        if not (
            isinstance(handler_class, type)
            and issubclass(handler_class, WebhookHandler)
        ):
            raise InvalidHandler(
                f"{handler_class!r} is not a subclass of WebhookHandler."
            )
        if handler_class.handle is WebhookHandler.handle:
            raise InvalidHandler(
                f"{_dotted(handler_class)} must override handle(request, response)."
            )
        for method in ("handle", "follow_up"):
            function = getattr(handler_class, method)
            if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(
                function
            ):
                raise InvalidHandler(
                    f"{_dotted(handler_class)}.{method} yields: it must be a `def` or "
                    "`async def` method that returns nothing (a generator's body "
                    "would never run)."
                )
            if not callable(function):
                raise InvalidHandler(
                    f"{_dotted(handler_class)}.{method} is not a method."
                )
        name = handler_class.__dict__.get("name")
        if not isinstance(name, str) or not HANDLER_NAME_RE.match(name):
            raise InvalidHandlerName(
                f"{_dotted(handler_class)} has an invalid handler name {name!r}: set the "
                "class attribute `name` to the handler name used in logicdialog, made "
                "of letters, digits, '-', '_' and '.' (at most 255 characters)."
            )
        existing = self._registry.get(name)
        if existing is not None and _dotted(existing) != _dotted(handler_class):
            raise HandlerAlreadyRegistered(
                f"Handler name {name!r} is already registered to {_dotted(existing)}; "
                f"{_dotted(handler_class)} cannot take it too."
            )
        self._registry[name] = handler_class
        return handler_class

    def unregister(self, name: str) -> None:
        """Remove the handler registered under ``name``; raises HandlerNotFound."""
        self.get(name)
        del self._registry[name]

    def get(self, name: str) -> type[WebhookHandler]:
        try:
            return self._registry[name]
        except KeyError:
            registered = self.names()
            raise HandlerNotFound(
                name,
                registered=registered,
                suggestions=difflib.get_close_matches(name, registered, n=3),
            ) from None

    def names(self) -> list[str]:
        return sorted(self._registry)

    def __contains__(self, name: object) -> bool:
        return name in self._registry

    def __len__(self) -> int:
        return len(self._registry)


registry = HandlerRegistry()
register = registry.register
