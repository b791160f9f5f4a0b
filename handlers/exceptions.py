from django.core.exceptions import ImproperlyConfigured


class InvalidHandler(ImproperlyConfigured):
    """A class given to ``register`` is not a usable ``WebhookHandler``."""


class InvalidHandlerName(InvalidHandler):
    """A handler's ``name`` is missing or has characters logicdialog does not allow."""


class HandlerAlreadyRegistered(ImproperlyConfigured):
    """Two different classes claim the same handler name."""


class HandlerNotFound(LookupError):
    """No handler is registered under the requested name.

    ``name`` is the name asked for, ``suggestions`` the close matches among
    the registered names.
    """

    def __init__(self, name: str, *, registered: list[str], suggestions: list[str]):
        self.name = name
        self.registered = registered
        self.suggestions = suggestions
        message = f"No webhook handler named {name!r}."
        if suggestions:
            message += (
                " Did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
            )
        if registered:
            message += " Registered handlers: " + ", ".join(registered) + "."
        else:
            message += " No handlers are registered."
        super().__init__(message)

    def __str__(self) -> str:
        return self.args[0]


class TransientError(Exception):
    """Raised by ``WebhookHandler.follow_up`` for a failure worth retrying later."""


class InvalidReply(ValueError):
    """The reply a handler built cannot be sent (raised by ``handlers.wire.render_reply``).

    A variable that is not JSON (a set, an object, a datetime, NaN, a
    circular structure), text that is not UTF-8 (a lone surrogate), nesting
    deeper than the wire allows, or JSON over the reply size cap. The
    intake records it as the handler's error.
    """
