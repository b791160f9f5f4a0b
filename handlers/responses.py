"""The reply a handler builds for the bot.

    response.add_text("Your result is 4.")
    response.add_buttons("Anything else?", ["Yes", Button("No", block_id=NO_BLOCK)])
    response.push_block_pointer("5f1b2c3d4e5f60718293a4b5")
    response.set_variable("result", 4)

Items are kept in the order they were added; ``handlers.wire.render_reply``
turns them into this project's reply JSON, ``{"blocks": [...], "variables":
{...}}`` (docs/contract.md, "Reply"). Each ``add_*`` method returns the builder,
so calls can be chained. Invalid arguments raise ``ValueError`` or
``TypeError`` at the call, which the intake records as a handler error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: logicdialog block ids are 24 hexadecimal characters.
BLOCK_ID_RE = re.compile(r"^[0-9a-fA-F]{24}$")


def _block_id(value: str) -> str:
    if not isinstance(value, str) or not BLOCK_ID_RE.match(value):
        raise ValueError(
            f"A logicdialog block id is 24 hexadecimal characters, not {value!r}."
        )
    return value


def _text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, not {value!r}.")
    return value


@dataclass(frozen=True, slots=True)
class Button:
    """A button or quick reply: a title and at most one action.

    With ``block_id`` it routes to that block, with ``url`` it opens a link,
    with ``payload`` it sends that text back; with none, its title is sent.
    """

    title: str
    block_id: str | None = None
    url: str | None = None
    payload: str | None = None

    def __post_init__(self) -> None:
        _text(self.title, "A button title")
        if sum(x is not None for x in (self.block_id, self.url, self.payload)) > 1:
            raise ValueError("A button takes at most one of block_id, url and payload.")
        if self.block_id is not None:
            _block_id(self.block_id)

    @classmethod
    def coerce(cls, value: Button | str) -> Button:
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(title=value)
        raise TypeError(f"Expected a Button or a string, not {type(value).__name__}.")


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Buttons:
    text: str
    buttons: tuple[Button, ...]


@dataclass(frozen=True, slots=True)
class QuickReplies:
    text: str
    options: tuple[Button, ...]


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    alt: str = ""


@dataclass(frozen=True, slots=True)
class BlockPointer:
    block_id: str


Item = Text | Buttons | QuickReplies | Image | BlockPointer


class ResponseBuilder:
    def __init__(self) -> None:
        self.items: list[Item] = []
        self.variables: dict[str, Any] = {}

    def add_text(self, text: str) -> ResponseBuilder:
        self.items.append(Text(_text(text, "Text")))
        return self

    def add_buttons(self, text: str, buttons: list[Button | str]) -> ResponseBuilder:
        if not buttons:
            raise ValueError("add_buttons() needs at least one button.")
        self.items.append(
            Buttons(_text(text, "Text"), tuple(map(Button.coerce, buttons)))
        )
        return self

    def add_quick_replies(
        self, text: str, options: list[Button | str]
    ) -> ResponseBuilder:
        if not options:
            raise ValueError("add_quick_replies() needs at least one option.")
        self.items.append(
            QuickReplies(_text(text, "Text"), tuple(map(Button.coerce, options)))
        )
        return self

    def add_image(self, url: str, alt: str = "") -> ResponseBuilder:
        self.items.append(Image(_text(url, "An image URL"), alt))
        return self

    def push_block_pointer(self, block_id: str) -> ResponseBuilder:
        """Route the conversation to an existing block (the SDK's ``pushBlockPointer``)."""
        self.items.append(BlockPointer(_block_id(block_id)))
        return self

    def set_variable(self, name: str, value: Any) -> ResponseBuilder:
        """Set a conversation variable; ``value`` must be JSON-serialisable."""
        self.variables[_text(name, "A variable name")] = value
        return self
