"""Request in: a body parsed strictly, and the fields this project reads from it.

``parse_json`` and ``parse_delivery`` raise ``WireError`` (a ``ValueError``)
with an error ``code`` and a ``detail`` a person can act on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from handlers.base import Answer, WebhookRequest
from handlers.mapping import (
    WireMapping,
    answer_like,
    pointer_trouble,
    resolve,
)
from handlers.wire.spelling import (
    ANSWER_KEY_FIELDS,
    ANSWER_LABEL_FIELDS,
    ANSWER_TYPE_FIELDS,
    CONVERSATION_FIELDS,
    DELIVERY_FIELDS,
    DELIVERY_HEADER,
    FORM_FIELDS,
    HANDLER_FIELDS,
    MAX_DEPTH,
    MAX_ID_LENGTH,
    MAX_INTEGER_DIGITS,
    MAX_TYPE_LENGTH,
    USER_FIELDS,
    CheckedObject,
    Delivery,
    WireError,
    json_type,
    pick,
    shown_type,
)


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
            f"The body must be a JSON object, not a JSON {json_type(value)}.",
        )
    _check_storable(value)
    return CheckedObject(value)


def _identifier(obj: Mapping[str, Any], names: tuple[str, ...], where: str = "") -> str:
    """An optional id: a string or an integer, returned as a string."""
    return _identifier_value(*pick(obj, names), where)


def _identifier_value(field: str, value: Any, where: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise WireError(
            "invalid_payload",
            f"`{where}{field}` must be a string or an integer, not a JSON {json_type(value)}.",
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
    return _optional_text_value(*pick(obj, names), where, limit)


def _optional_text_value(
    field: str, value: Any, where: str, limit: int | None = None
) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WireError(
            "invalid_payload",
            f"`{where}{field}` must be a string, not a JSON {json_type(value)}.",
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
    return pick(item, names)


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
            f"says so), not a JSON {json_type(form)}.",
        )
    if shape == "list" and not isinstance(form, list):
        raise WireError(
            "unrecognised_payload",
            f"`{form_field}` should be a list of answer objects (the bot's wire "
            f"mapping says so), not a JSON {json_type(form)}.",
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
                    f"not a JSON {json_type(item)}.",
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
        f"not a JSON {json_type(form)}.",
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
    return pick(payload, names)


def _answers_of(payload: Mapping[str, Any], mapping: WireMapping) -> tuple[Answer, ...]:
    if mapping.answers is None:
        where, form = pick(payload, FORM_FIELDS)
        shape, pointers = "", {}
    else:
        where, form = mapping.answers.at, resolve(payload, mapping.answers.at)
        shape, pointers = mapping.answers.shape, mapping.answers.item
    if form is None:
        stray = next(
            (
                key
                for key, value in payload.items()
                if isinstance(value, dict | list) and value and answer_like(key)
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
            f"`{field}` must be a non-empty string, not {shown_type(handler)}.",
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
