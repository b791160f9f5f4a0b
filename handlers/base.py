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

It returns nothing, and may be ``def`` or ``async def``: a handler that
waits on a CRM or an API is best written ``async def`` with an async HTTP
client (``httpx.AsyncClient`` with a timeout), the ORM's async API
(``await Model.objects.acreate(...)``) for its own writes. If it raises, the
delivery is recorded as ``failed`` with the exception and traceback, and the
bot gets a 500 ``handler_error`` reply; the stored form answers stay.

It runs outside any transaction: the delivery was stored and committed
before it started, and no database connection waits on it. Its own writes
are committed as it makes them (wrap them in ``transaction.atomic()`` to
make them all-or-nothing), and a replay or a take-over of an abandoned
delivery runs it again: a handler that writes should be idempotent (key its
rows on ``request.event_id`` or ``request.delivery_id``).

**A deadline.** A handler that has not finished after ``deadline_seconds``
(default ``WEBHOOK_HANDLER_DEADLINE_SECONDS``, 8 s) is given up on: the bot
gets the fallback reply (``fallback_text``, default
``WEBHOOK_HANDLER_FALLBACK_TEXT``) and the run is recorded ``timed_out``
(the event ``failed``, to be replayed). An ``async def`` handler is
cancelled at the deadline; a ``def`` handler cannot be stopped, so it runs
on, and what it comes to is recorded on the run but never sent (so does an
``async def`` one that blocks its event loop: the bot still gets the
fallback at the deadline).

Anything ``handle`` raises, ``SystemExit`` and ``KeyboardInterrupt``
included, is its error. A reply that is not JSON, or over
``WEBHOOK_MAX_REPLY_BYTES``, fails the run with ``InvalidReply``.

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
    #: Seconds ``handle`` may take before the bot gets ``fallback_text``;
    #: None for ``WEBHOOK_HANDLER_DEADLINE_SECONDS``.
    deadline_seconds: ClassVar[float | None] = None
    #: The reply sent at the deadline; empty for ``WEBHOOK_HANDLER_FALLBACK_TEXT``.
    fallback_text: ClassVar[str] = ""

    def handle(self, request: WebhookRequest, response: ResponseBuilder) -> None:
        raise NotImplementedError(f"{type(self).__qualname__} must implement handle().")

    def follow_up(self, request: WebhookRequest) -> None:
        """Work to do after the reply, in a task worker; see the module docstring.

        May be ``async def`` too.
        """

    @classmethod
    def has_follow_up(cls) -> bool:
        return cls.follow_up is not WebhookHandler.follow_up
