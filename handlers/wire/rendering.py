"""What this project writes: the reply a handler built, and (for ``send_webhook``
and tests) a request body in the canonical spelling.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from handlers.exceptions import InvalidReply
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
from handlers.wire.spelling import (
    ANSWER_KEY_FIELDS,
    ANSWER_LABEL_FIELDS,
    ANSWER_TYPE_FIELDS,
    BUTTON_TARGETS,
    BUTTON_TITLE,
    CONVERSATION_FIELDS,
    DELIVERY_FIELDS,
    FORM_FIELDS,
    HANDLER_FIELDS,
    MAX_DEPTH,
    USER_FIELDS,
    RenderedReply,
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
) -> RenderedReply:
    """The reply JSON: ``{"blocks": [...], "variables": {...}}``, with its text.

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
    return RenderedReply(reply, encoded.decode())


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
