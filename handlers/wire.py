"""The wire format: request fields in, reply JSON out. Nothing else knows it.

logicdialog publishes neither the request's field names nor the reply's JSON
(see docs/contract.md), so every spelling this project
accepts or emits lives here; a captured real call changes this module only.

Request body, camelCase first (the vendor SDK is JavaScript), aliases after:

==================  =============================================
handler name        ``handler``, ``handlerName``, ``handler_name``
form values         ``formValues``, ``form_values``
conversation id     ``conversationId``, ``conversation_id``, ``sessionId``
user id             ``userId``, ``user_id``
delivery id         ``id``, ``eventId``, ``event_id``; else header ``Idempotency-Key``;
                    else the token's ``jti`` claim
==================  =============================================

``formValues`` is an object ``{key: value}`` or a list of objects with
``key``/``name``/``id``, optional ``title``/``question``/``label``, optional
``type``/``inputType`` and ``value``; both become ordered ``Answer``\\s.
Every other field stays in the stored payload untouched.

``parse_json`` and ``parse_delivery`` raise ``WireError`` (a ``ValueError``)
with an error ``code`` and a ``detail`` a person can act on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.base import Answer, WebhookRequest
from handlers.exceptions import InvalidReply
from handlers.mapping import (
    ANSWER_LIKE_NAMES,
    WireMapping,
    pointer_trouble,
    resolve,
)
from handlers.responses import (
    BlockPointer,
    Button,
    Buttons,
    Image,
    Item,
    QuickReplies,
    ResponseBuilder,
    Text,
)

HANDLER_FIELDS = ("handler", "handlerName", "handler_name")
FORM_FIELDS = ("formValues", "form_values")
CONVERSATION_FIELDS = ("conversationId", "conversation_id", "sessionId")
USER_FIELDS = ("userId", "user_id")
DELIVERY_FIELDS = ("id", "eventId", "event_id")
DELIVERY_HEADER = "Idempotency-Key"
#: The request headers this module reads (kept raw, never the stored copy).
REQUEST_HEADERS = (DELIVERY_HEADER,)
ANSWER_KEY_FIELDS = ("key", "name", "id")
ANSWER_LABEL_FIELDS = ("title", "question", "label")
ANSWER_TYPE_FIELDS = ("type", "inputType", "input_type")

#: Reply blocks: each type, and its fields besides ``type``, as ``render_reply``
#: writes them (``buttons``/``options`` hold buttons; the rest are strings).
REPLY_BLOCKS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "buttons": ("text", "buttons"),
    "quickReplies": ("text", "options"),
    "image": ("url", "alt"),
    "blockPointer": ("id",),
}
#: A button's fields: its title, then at most one target.
BUTTON_TITLE = "title"
BUTTON_TARGETS = ("blockId", "url", "payload")

#: Longest handler name, id or question key accepted (they are indexed columns).
MAX_ID_LENGTH = 255
MAX_TYPE_LENGTH = 64
#: Deepest nesting of arrays and objects accepted in a body.
MAX_DEPTH = 64
#: Most digits in a JSON integer: far beyond any real id or answer, and well
#: under the interpreter's own limit (converting huge integers is quadratic).
MAX_INTEGER_DIGITS = 1000


class WireError(ValueError):
    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Delivery:
    """The fields of one delivery that this project reads from the body."""

    handler_name: str
    answers: tuple[Answer, ...]
    conversation_id: str
    user_id: str
    delivery_id: str


# --- request in ------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise WireError(
        "invalid_json", f"The body contains {name}, which is not valid JSON."
    )


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise WireError(
            "invalid_json", f"The number {text[:40]} is too large to store."
        )
    return number


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise WireError(
            "invalid_json",
            f"The body contains an integer of {digits} digits; the limit is {MAX_INTEGER_DIGITS}.",
        )
    return int(text)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise WireError(
            "invalid_json",
            f"The key {duplicate[:80]!r} appears twice in one object; its meaning is ambiguous.",
        )
    return obj


def _check_storable(value: Any, depth: int = 0) -> None:
    """Refuse what parses as JSON but cannot be stored faithfully everywhere."""
    if depth > MAX_DEPTH:
        raise WireError(
            "invalid_json", f"The body is nested more than {MAX_DEPTH} levels deep."
        )
    if isinstance(value, str):
        if "\x00" in value:
            raise WireError(
                "invalid_json", "The body contains a NUL character (\\u0000)."
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise WireError(
                "invalid_json", "The body contains an unpaired UTF-16 surrogate escape."
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key, depth + 1)
            _check_storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_storable(item, depth + 1)


def parse_json(raw: bytes) -> dict[str, Any]:
    """Parse a request body into a JSON object, strictly.

    Refused with code ``invalid_json``: an empty body, bytes that are not
    UTF-8, syntax errors, ``NaN``/``Infinity``, floats too large to store,
    integers of more than ``MAX_INTEGER_DIGITS`` digits,
    duplicate keys, NUL characters, unpaired surrogates, nesting deeper than
    ``MAX_DEPTH``. Refused with ``invalid_payload``: valid JSON that is not
    an object.
    """
    if not raw.strip():
        raise WireError(
            "invalid_json", "The request body is empty; send a JSON object."
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WireError(
            "invalid_json", f"The body is not valid UTF-8 (byte {exc.start})."
        ) from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        raise WireError(
            "invalid_json",
            # Some messages end in "at" ("Unterminated string starting at").
            f"The body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
        ) from None
    except RecursionError:
        raise WireError(
            "invalid_json", f"The body is nested more than {MAX_DEPTH} levels deep."
        ) from None
    except ValueError as exc:
        if isinstance(exc, WireError):
            raise
        raise WireError("invalid_json", f"The body is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise WireError(
            "invalid_payload",
            f"The body must be a JSON object, not a JSON {_json_type(value)}.",
        )
    _check_storable(value)
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _shown_type(value: Any) -> str:
    if isinstance(value, str):
        return "a blank string" if value else "an empty string"
    return f"a JSON {_json_type(value)}"


def _pick(obj: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, Any]:
    """The first of ``names`` present in ``obj``, and its value."""
    for name in names:
        if name in obj:
            return name, obj[name]
    return names[0], None


def _identifier(obj: Mapping[str, Any], names: tuple[str, ...], where: str = "") -> str:
    """An optional id: a string or an integer, returned as a string."""
    return _identifier_value(*_pick(obj, names), where)


def _identifier_value(field: str, value: Any, where: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise WireError(
            "invalid_payload",
            f"`{where}{field}` must be a string or an integer, not a JSON {_json_type(value)}.",
        )
    if len(value) > MAX_ID_LENGTH:
        raise WireError(
            "invalid_payload",
            f"`{where}{field}` is {len(value)} characters long; the limit is {MAX_ID_LENGTH}.",
        )
    return value


def _optional_text(
    obj: Mapping[str, Any], names: tuple[str, ...], where: str, limit: int | None = None
) -> str:
    return _optional_text_value(*_pick(obj, names), where, limit)


def _optional_text_value(
    field: str, value: Any, where: str, limit: int | None = None
) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WireError(
            "invalid_payload",
            f"`{where}{field}` must be a string, not a JSON {_json_type(value)}.",
        )
    if limit is not None and len(value) > limit:
        raise WireError(
            "invalid_payload",
            f"`{where}{field}` is {len(value)} characters long; the limit is {limit}.",
        )
    return value


def _item_field(
    item: Mapping[str, Any],
    pointers: Mapping[str, str],
    name: str,
    names: tuple[str, ...],
) -> tuple[str, Any]:
    """An answer item's field: where the mapping points, else a default spelling."""
    if name in pointers:
        return pointers[name], resolve(item, pointers[name])
    return _pick(item, names)


def _answers(
    form_field: str,
    form: Any,
    *,
    shape: str = "",
    pointers: Mapping[str, str] | None = None,
) -> tuple[Answer, ...]:
    if form is None:
        return ()
    if shape == "object" and not isinstance(form, dict):
        raise WireError(
            "unrecognised_payload",
            f"`{form_field}` should be an object of answers (the bot's wire mapping "
            f"says so), not a JSON {_json_type(form)}.",
        )
    if shape == "list" and not isinstance(form, list):
        raise WireError(
            "unrecognised_payload",
            f"`{form_field}` should be a list of answer objects (the bot's wire "
            f"mapping says so), not a JSON {_json_type(form)}.",
        )
    pointers = pointers or {}
    if isinstance(form, dict):
        for key in form:
            if len(key) > MAX_ID_LENGTH:
                raise WireError(
                    "invalid_payload",
                    f"A key in `{form_field}` is {len(key)} characters long; the limit is {MAX_ID_LENGTH}.",
                )
        return tuple(Answer(key=key, value=value) for key, value in form.items())
    if isinstance(form, list):
        answers = []
        for index, item in enumerate(form):
            where = f"{form_field}[{index}]."
            if not isinstance(item, dict):
                raise WireError(
                    "invalid_payload",
                    f"`{form_field}[{index}]` must be an object with a key and a value, "
                    f"not a JSON {_json_type(item)}.",
                )
            key = _identifier_value(
                *_item_field(item, pointers, "key", ANSWER_KEY_FIELDS), where
            )
            if not key:
                raise WireError(
                    "unrecognised_payload" if pointers else "invalid_payload",
                    f"`{form_field}[{index}]` has no "
                    + (
                        f"`{pointers['key']}`"
                        if "key" in pointers
                        else "`key` (or `name`, `id`)"
                    )
                    + " naming its question.",
                )
            answers.append(
                Answer(
                    key=key,
                    value=_item_field(item, pointers, "value", ("value",))[1],
                    label=_optional_text_value(
                        *_item_field(item, pointers, "label", ANSWER_LABEL_FIELDS),
                        where,
                    ),
                    input_type=_optional_text_value(
                        *_item_field(item, pointers, "type", ANSWER_TYPE_FIELDS),
                        where,
                        MAX_TYPE_LENGTH,
                    ),
                )
            )
        return tuple(answers)
    raise WireError(
        "invalid_payload",
        f"`{form_field}` must be an object of answers or a list of answer objects, "
        f"not a JSON {_json_type(form)}.",
    )


def _exact_id(value: str, where: str) -> str:
    """An id from outside the body, taken exactly as sent or refused.

    Cutting or replacing characters could make two different deliveries
    share an id, and the second would be taken for a copy of the first.
    """
    if len(value) > MAX_ID_LENGTH:
        raise WireError(
            "invalid_payload",
            f"{where} is {len(value)} characters long; the limit is {MAX_ID_LENGTH}.",
        )
    if "\x00" in value:  # PostgreSQL text refuses NUL
        raise WireError("invalid_payload", f"{where} contains a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise WireError(
            "invalid_payload", f"{where} contains an unpaired UTF-16 surrogate."
        ) from None
    return value


def _field(
    payload: Mapping[str, Any], mapping: WireMapping, name: str, names: tuple[str, ...]
) -> tuple[str, Any]:
    """(where, value): at the mapping's pointer for ``name``, else a default spelling."""
    if name in mapping.fields:
        return mapping.fields[name], resolve(payload, mapping.fields[name])
    return _pick(payload, names)


def _answers_of(payload: Mapping[str, Any], mapping: WireMapping) -> tuple[Answer, ...]:
    if mapping.answers is None:
        where, form = _pick(payload, FORM_FIELDS)
        shape, pointers = "", {}
    else:
        where, form = mapping.answers.at, resolve(payload, mapping.answers.at)
        shape, pointers = mapping.answers.shape, mapping.answers.item
    if form is None:
        stray = next(
            (
                key
                for key, value in payload.items()
                if isinstance(value, dict | list)
                and value
                and key.lower().replace("_", "").replace("-", "") in ANSWER_LIKE_NAMES
            ),
            None,
        )
        if stray is not None:
            raise WireError(
                "unrecognised_payload",
                f"No answers at `{where}`, but the body has `{stray[:60]}`, which looks "
                "like answers; set the bot's wire mapping (`answers.at`) to read them.",
            )
    return _answers(where, form, shape=shape, pointers=pointers)


def parse_delivery(
    payload: Mapping[str, Any],
    *,
    headers: Mapping[str, str],
    token_id: Any = None,
    mapping: WireMapping | None = None,
) -> Delivery:
    """Read the fields this project uses from a parsed body; see the module docstring.

    ``headers`` are the raw request headers (``REQUEST_HEADERS`` at least);
    ``token_id`` is the verified token's ``jti`` claim, if any; ``mapping``
    is the bot's ``WireMapping`` (``handlers.mapping``): where it places a
    field, the field is read there instead of under the default spellings.

    Raises ``WireError``: ``unrecognised_payload`` when the body has no
    handler name where the mapping looks, or answers somewhere it does not
    look (the body may be in another sender's shape: stored whole, to be
    read again once the mapping is fixed); ``invalid_payload`` when a field
    is found but cannot be used (a wrong type, too long).
    """
    mapping = mapping or WireMapping()
    field, handler = _field(payload, mapping, "handler_name", HANDLER_FIELDS)
    if handler is None:
        if "handler_name" in mapping.fields:
            trouble = pointer_trouble(payload, mapping.fields["handler_name"])
            detail = (
                f"The body names no handler at `{field}`, where the bot's wire "
                f"mapping looks ({trouble}); fix the mapping, or send the Function "
                "block's handler name there."
            )
        else:
            detail = (
                "The body names no handler: none of "
                + ", ".join(f"`{name}`" for name in HANDLER_FIELDS)
                + " is set. If the bot sends it elsewhere, give the bot a wire "
                "mapping (`handler_name`, a JSON Pointer); the delivery is kept."
            )
        raise WireError("unrecognised_payload", detail)
    if not isinstance(handler, str) or not handler.strip():
        raise WireError(
            "invalid_payload",
            f"`{field}` must be a non-empty string, not {_shown_type(handler)}.",
        )
    handler = handler.strip()
    if len(handler) > MAX_ID_LENGTH:
        raise WireError(
            "invalid_payload",
            f"`{field}` is {len(handler)} characters long; the limit is {MAX_ID_LENGTH}.",
        )
    delivery_id = _identifier_value(
        *_field(payload, mapping, "delivery_id", DELIVERY_FIELDS)
    )
    if not delivery_id:
        delivery_id = _exact_id(
            headers.get(DELIVERY_HEADER, ""), f"The {DELIVERY_HEADER} header"
        )
    if (
        not delivery_id
        and isinstance(token_id, str | int)
        and not isinstance(token_id, bool)
    ):
        delivery_id = _exact_id(str(token_id), "The token's `jti` claim")
    return Delivery(
        handler_name=handler,
        answers=_answers_of(payload, mapping),
        conversation_id=_identifier_value(
            *_field(payload, mapping, "conversation_id", CONVERSATION_FIELDS)
        ),
        user_id=_identifier_value(*_field(payload, mapping, "user_id", USER_FIELDS)),
        delivery_id=delivery_id,
    )


def handler_request(
    delivery: Delivery,
    *,
    payload: Mapping[str, Any],
    bot: Any = None,
    event_id: int | None = None,
) -> WebhookRequest:
    """What a handler is given for ``delivery`` (its whole ``payload`` included)."""
    return WebhookRequest(
        handler_name=delivery.handler_name,
        answers=delivery.answers,
        conversation_id=delivery.conversation_id,
        user_id=delivery.user_id,
        delivery_id=delivery.delivery_id,
        payload=payload,
        bot=bot,
        event_id=event_id,
    )


def answer_item(
    *, key: str, value: Any, label: str = "", input_type: str = ""
) -> dict[str, Any]:
    """One answer of a list-shaped ``formValues``, in the canonical spelling."""
    item: dict[str, Any] = {ANSWER_KEY_FIELDS[0]: key}
    if label:
        item[ANSWER_LABEL_FIELDS[0]] = label
    if input_type:
        item[ANSWER_TYPE_FIELDS[0]] = input_type
    item["value"] = value
    return item


#: The request fields a person connecting a bot looks for, with their spellings.
EXPECTED_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("handler name", HANDLER_FIELDS),
    ("form values", FORM_FIELDS),
    ("conversation id", CONVERSATION_FIELDS),
    ("user id", USER_FIELDS),
    ("delivery id", DELIVERY_FIELDS),
)


def field_spellings(payload: Any) -> list[tuple[str, str | None, tuple[str, ...]]]:
    """For each expected field: the spelling found in ``payload`` (or None), and all."""
    found = payload if isinstance(payload, Mapping) else {}
    return [
        (what, next((name for name in names if name in found), None), names)
        for what, names in EXPECTED_FIELDS
    ]


def build_payload(
    *,
    handler_name: str,
    form_values: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    conversation_id: str = "",
    user_id: str = "",
    delivery_id: str = "",
) -> dict[str, Any]:
    """A request body in this module's canonical spelling (for send_webhook and tests).

    ``form_values`` is a mapping ``{key: value}`` or a list of ``answer_item``\\s.
    """
    payload: dict[str, Any] = {HANDLER_FIELDS[0]: handler_name}
    for field, value in (
        (CONVERSATION_FIELDS[0], conversation_id),
        (USER_FIELDS[0], user_id),
        (DELIVERY_FIELDS[0], delivery_id),
    ):
        if value:
            payload[field] = value
    if isinstance(form_values, Mapping):
        payload[FORM_FIELDS[0]] = dict(form_values)
    elif form_values is not None:
        payload[FORM_FIELDS[0]] = [dict(item) for item in form_values]
    return payload


# --- reply out ---------------------------------------------------------------


def _button(button: Button) -> dict[str, str]:
    out = {BUTTON_TITLE: button.title}
    block_id, url, payload = BUTTON_TARGETS
    if button.block_id is not None:
        out[block_id] = button.block_id
    elif button.url is not None:
        out[url] = button.url
    elif button.payload is not None:
        out[payload] = button.payload
    return out


def _item(item: Item) -> dict[str, Any]:
    match item:
        case Text(text=text):
            return {"type": "text", "text": text}
        case Buttons(text=text, buttons=buttons):
            return {
                "type": "buttons",
                "text": text,
                "buttons": [_button(b) for b in buttons],
            }
        case QuickReplies(text=text, options=options):
            return {
                "type": "quickReplies",
                "text": text,
                "options": [_button(b) for b in options],
            }
        case Image(url=url, alt=alt):
            return {"type": "image", "url": url, "alt": alt}
        case BlockPointer(block_id=block_id):
            return {"type": "blockPointer", "id": block_id}
    raise TypeError(f"Unknown reply item {item!r}.")


def render_reply(
    response: ResponseBuilder, *, max_bytes: int | None = None
) -> dict[str, Any]:
    """The reply JSON: ``{"blocks": [...], "variables": {...}}``.

    Raises ``InvalidReply`` when a variable's value is not JSON (NaN and
    circular structures included), nested deeper than ``MAX_DEPTH``, when
    any text is not UTF-8 (a lone surrogate), or when the reply's JSON is
    over ``max_bytes``: a reply is checked here, once, so what is stored and
    what is sent are the same bounded JSON.
    """
    variables = dict(response.variables)
    reply = {"blocks": [_item(item) for item in response.items], "variables": variables}
    _check_shape(variables, max_bytes=max_bytes)
    try:
        encoded = json.dumps(
            reply, allow_nan=False, ensure_ascii=False, separators=(",", ":")
        ).encode()
    except UnicodeEncodeError as exc:
        raise InvalidReply(
            f"The reply holds text that is not UTF-8 ({exc.reason} at {exc.start})."
        ) from exc
    except (TypeError, ValueError) as exc:  # ValueError: NaN, or a huge integer
        raise InvalidReply(f"A reply variable is not JSON-serialisable: {exc}") from exc
    if max_bytes is not None and len(encoded) > max_bytes:
        raise InvalidReply(
            f"The reply is {len(encoded):,} bytes of JSON, over the "
            f"{max_bytes:,}-byte cap (WEBHOOK_MAX_REPLY_BYTES); a bot reply is a "
            "few messages and variables, not a data transfer."
        )
    return reply


#: Most values walked in a reply's variables when no byte cap is given.
MAX_REPLY_VALUES = 1_000_000


def _check_shape(value: Any, *, max_bytes: int | None) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` (a circular structure is endless).

    Walked without recursion before any recursive encoder meets it; at most
    ``max_bytes`` values are visited (each takes at least one byte of JSON,
    so more values than bytes is over the cap anyway), so a
    structure sharing its parts many times over cannot make the walk long.
    """
    budget = most = max_bytes or MAX_REPLY_VALUES
    stack = [(value, MAX_DEPTH)]
    while stack:
        item, left = stack.pop()
        budget -= 1
        if budget < 0:
            raise InvalidReply(
                f"The reply's variables hold more than {most:,} values"
                + (
                    f", so its JSON is over the {max_bytes:,}-byte cap "
                    "(WEBHOOK_MAX_REPLY_BYTES)."
                    if max_bytes
                    else "."
                )
            )
        if isinstance(item, Mapping | list | tuple):
            if left <= 0:
                raise InvalidReply(
                    f"A reply variable is nested deeper than {MAX_DEPTH} levels "
                    "(or is circular)."
                )
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, left - 1) for child in children)


def error_body(code: str, detail: str) -> dict[str, str]:
    """Every error reply: ``{"error": "<code>", "detail": "<sentence>"}``."""
    return {"error": code, "detail": detail}
