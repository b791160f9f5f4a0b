"""The handler contract.

A handler is a subclass of ``WebhookHandler`` with an explicit ``name`` (the
handler name typed into a logicdialog Function block) and a ``handle`` method.
One instance is made per delivery, so instances may keep per-delivery state
but never share it between deliveries.

``handle(request, response)`` receives:

- ``request``: a ``WebhookRequest``, the delivery as read from the wire and
  already stored (``request.event_id`` is the stored event's primary key);
- ``response``: a ``ResponseBuilder``; whatever the handler adds to it is the
  bot's reply.

It returns nothing. If it raises, the delivery is recorded as ``failed`` with
the exception and traceback, any database writes it made are rolled back, and
the bot gets a 500 ``handler_error`` reply; the stored form answers stay.

Work that must not delay the bot's reply (pushing the form to a CRM, sending
an email) goes in ``follow_up(request)``: after ``handle`` succeeds, it runs
in a task worker (``manage.py db_worker``). Raise ``TransientError`` for a
failure worth retrying (a timeout, a 503): it is retried with exponential
backoff up to ``follow_up_max_attempts`` tries. Any other exception, or the
last transient one, is permanent: the run is recorded as ``dead`` and the
event as ``failed``, to be replayed after a fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from handlers.responses import ResponseBuilder

#: What logicdialog handler names may contain: letters, digits, ``-``, ``_``, ``.``.
HANDLER_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")


@dataclass(frozen=True, slots=True)
class Answer:
    """One form answer, in the order the form asked it."""

    key: str
    value: Any
    label: str = ""
    input_type: str = ""


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """One delivery, as a handler sees it.

    ``form_values`` maps question key to value in form order (for a key asked
    twice, the last answer wins; ``answers`` keeps both). ``bot`` is the
    stored bot object; ``payload`` the whole parsed JSON body, unknown fields
    included.
    """

    handler_name: str
    answers: tuple[Answer, ...] = ()
    conversation_id: str = ""
    user_id: str = ""
    delivery_id: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    bot: Any = None
    event_id: int | None = None

    @property
    def form_values(self) -> Mapping[str, Any]:
        return MappingProxyType({answer.key: answer.value for answer in self.answers})


class WebhookHandler:
    """Base class of every handler; see the module docstring for the contract."""

    #: The logicdialog handler name this class answers, e.g. ``"division-handler"``.
    name: ClassVar[str]
    #: A human-readable name for the admin; defaults to ``name``.
    verbose_name: ClassVar[str] = ""
    #: How many times ``follow_up`` is tried when it raises ``TransientError``.
    follow_up_max_attempts: ClassVar[int] = 5

    def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        raise NotImplementedError(f"{type(self).__qualname__} must implement handle().")

    def follow_up(self, request: WebhookRequest) -> None:
        """Work to do after the reply, in a task worker; see the module docstring."""

    @classmethod
    def has_follow_up(cls) -> bool:
        return cls.follow_up is not WebhookHandler.follow_up
