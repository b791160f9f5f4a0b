"""A bot's wire mapping: where its deliveries keep the fields this project reads.

logicdialog publishes no request format (docs/contract.md), so the spellings
in ``handlers.wire`` are a guess. A bot whose deliveries spell a field
differently carries a mapping that says where each one sits, as JSON
Pointers (RFC 6901) into the body; whatever it leaves out keeps the
defaults. The format (every key optional)::

    {
      "handler_name": "/block/handlerName",
      "conversation_id": "/conversation/id",
      "user_id": "/user/id",
      "delivery_id": "/meta/deliveryId",
      "answers": {
        "at": "/answers",
        "shape": "list",
        "key": "/q", "label": "/q", "type": "/kind", "value": "/a"
      }
    }

``answers.shape`` is ``"object"`` (``{key: value}``) or ``"list"`` (a list of
objects); left out, the value found decides. For a list, ``key``, ``label``,
``type`` and ``value`` are pointers into each item; those left out are read
under the default spellings (``key``/``name``/``id``, ``title``/...).

``WireMapping.from_json`` refuses anything else with ``MappingError`` (a
``ValueError``) naming the key and why; ``pointer_trouble`` says why a
pointer finds nothing in a given body ("/block has no key 'handlerName'").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The top-level fields a mapping may place, in the order they are shown.
FIELDS = ("handler_name", "conversation_id", "user_id", "delivery_id")
ANSWER_FIELDS = ("key", "label", "type", "value")
SHAPES = ("object", "list")
#: Longest pointer accepted: far beyond any real body's nesting.
MAX_POINTER_LENGTH = 500


class MappingError(ValueError):
    """A mapping that cannot be used, with the sentence that says why."""


_MISSING = object()


def _tokens(pointer: str) -> list[str]:
    """The reference tokens of ``pointer`` (RFC 6901: ``~1`` is ``/``, ``~0`` is ``~``)."""
    if pointer == "":
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _step(value: Any, part: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(part, _MISSING)
    if isinstance(value, list):
        if part.isdigit() and (part == "0" or part[0] != "0"):
            index = int(part)
            return value[index] if index < len(value) else _MISSING
        return _MISSING
    return _MISSING


def resolve(document: Any, pointer: str) -> Any:
    """The value ``pointer`` names in ``document``, or ``None`` if it names nothing."""
    value = document
    for token in _tokens(pointer):
        value = _step(value, token)
        if value is _MISSING:
            return None
    return value


def pointer_trouble(document: Any, pointer: str) -> str | None:
    """Why ``pointer`` finds nothing in ``document`` (a sentence), or None if it does."""
    value, walked = document, ""
    for token in _tokens(pointer):
        here = walked or "the body"
        nxt = _step(value, token)
        if nxt is _MISSING:
            if isinstance(value, Mapping):
                return f"{here} has no key {token!r}"
            if isinstance(value, list):
                return f"{here} is a list of {len(value)}, with no item {token!r}"
            return f"{here} is a {_kind(value)}, with nothing inside"
        value = nxt
        walked += "/" + token.replace("~", "~0").replace("/", "~1")
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else type(value).__name__


def _pointer(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise MappingError(
            f'`{where}` must be a JSON Pointer string such as "/block/handlerName", '
            f"not {_kind(value)}."
        )
    if value and not value.startswith("/"):
        raise MappingError(
            f'`{where}` is {value[:60]!r}: a JSON Pointer starts with "/" '
            f'(try "/{value[:60]}").'
        )
    if len(value) > MAX_POINTER_LENGTH:
        raise MappingError(
            f"`{where}` is {len(value)} characters long; the limit is {MAX_POINTER_LENGTH}."
        )
    bad = next(
        (
            t
            for t in value[1:].split("/")
            if "~" in t.replace("~0", "").replace("~1", "")
        ),
        None,
    )
    if bad is not None:
        raise MappingError(
            f"`{where}` has {bad[:60]!r}: in a JSON Pointer, `~` is written `~0` "
            "and `/` inside a key `~1`."
        )
    return value


@dataclass(frozen=True, slots=True)
class AnswersMapping:
    at: str
    shape: str = ""  # "" : the value found decides
    item: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WireMapping:
    """A validated mapping; ``fields`` holds the pointers it sets."""

    fields: Mapping[str, str] = field(default_factory=dict)
    answers: AnswersMapping | None = None

    @classmethod
    def from_json(cls, data: Any) -> WireMapping:
        if data is None or data == {}:
            return cls()
        if not isinstance(data, Mapping):
            raise MappingError(
                f"A wire mapping is a JSON object, not {_kind(data)}; see docs/contract.md."
            )
        unknown = sorted(set(data) - {*FIELDS, "answers"})
        if unknown:
            raise MappingError(
                f"Unknown key {unknown[0]!r} in the wire mapping; the keys are "
                f"{', '.join((*FIELDS, 'answers'))}."
            )
        fields = {
            name: _pointer(data[name], name)
            for name in FIELDS
            if data.get(name) is not None
        }
        answers = None
        if data.get("answers") is not None:
            answers = _answers_mapping(data["answers"])
        return cls(fields=fields, answers=answers)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.fields)
        if self.answers is not None:
            answers: dict[str, Any] = {"at": self.answers.at}
            if self.answers.shape:
                answers["shape"] = self.answers.shape
            answers |= dict(self.answers.item)
            out["answers"] = answers
        return out

    def pointers(self) -> list[tuple[str, str]]:
        """(name, pointer) of every pointer into the body, answers' ``at`` included."""
        found = list(self.fields.items())
        if self.answers is not None:
            found.append(("answers.at", self.answers.at))
        return found

    def __bool__(self) -> bool:
        return bool(self.fields) or self.answers is not None


def _answers_mapping(data: Any) -> AnswersMapping:
    if isinstance(data, str):
        return AnswersMapping(at=_pointer(data, "answers"))
    if not isinstance(data, Mapping):
        raise MappingError(
            "`answers` must be a JSON Pointer, or an object with `at` and optionally "
            f"`shape`, {', '.join(f'`{n}`' for n in ANSWER_FIELDS)}; not {_kind(data)}."
        )
    unknown = sorted(set(data) - {"at", "shape", *ANSWER_FIELDS})
    if unknown:
        raise MappingError(
            f"Unknown key {unknown[0]!r} in `answers`; the keys are at, shape, "
            f"{', '.join(ANSWER_FIELDS)}."
        )
    if "at" not in data:
        raise MappingError(
            '`answers` needs `at`, the pointer to the answers ("/answers").'
        )
    shape = data.get("shape") or ""
    if shape not in ("", *SHAPES):
        raise MappingError(
            f'`answers.shape` is {str(shape)[:40]!r}; it is "object" ({{key: value}}) '
            'or "list" (a list of objects).'
        )
    item = {
        name: _pointer(data[name], f"answers.{name}")
        for name in ANSWER_FIELDS
        if data.get(name) is not None
    }
    if item and shape == "object":
        raise MappingError(
            "`answers.key`, `label`, `type` and `value` read the items of a list; "
            'with `"shape": "object"` each key is the question and its value the answer.'
        )
    return AnswersMapping(at=_pointer(data["at"], "answers.at"), shape=shape, item=item)


# --- a suggested mapping -------------------------------------------------------

#: How far ``suggest`` looks into a body, and how many values it reads at most.
SUGGEST_DEPTH = 6
SUGGEST_NODES = 20_000

_ID_HINTS = {
    "conversation_id": ("conversation", "session", "chat", "thread"),
    "user_id": ("user", "contact", "customer", "visitor", "sender"),
    "delivery_id": ("delivery", "event", "message", "request", "webhook"),
}
_HANDLER_HINTS = ("handler", "function", "action", "hook")
#: Keys (lower case, without ``_`` and ``-``) under which senders put answers:
#: where ``suggest`` looks, and what makes a body without answers where its
#: mapping looks ``unparsed`` (``handlers.wire``).
ANSWER_LIKE_NAMES = frozenset(
    {
        "answers",
        "values",
        "form",
        "formdata",
        "formvalues",
        "fields",
        "responses",
        "inputs",
        "submission",
        "questions",
    }
)
_ANSWER_ITEM_FIELDS = {
    "key": ("key", "name", "id", "field", "slug", "q", "question"),
    "label": ("title", "question", "label", "text", "prompt", "q"),
    "type": ("type", "inputType", "input_type", "kind"),
    "value": ("value", "answer", "a", "v", "response", "reply"),
}


def _squash(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def answer_like(key: str) -> bool:
    """Whether a body's key is named as senders name their answers."""
    return _squash(key) in ANSWER_LIKE_NAMES


def _nodes(document: Any) -> list[tuple[str, tuple[str, ...], Any]]:
    """(pointer, the keys on the way, value) of the body's values, breadth first."""
    found: list[tuple[str, tuple[str, ...], Any]] = []
    queue: list[tuple[str, tuple[str, ...], Any, int]] = [("", (), document, 0)]
    while queue and len(found) < SUGGEST_NODES:
        pointer, keys, value, depth = queue.pop(0)
        found.append((pointer, keys, value))
        if depth >= SUGGEST_DEPTH or not isinstance(value, Mapping):
            continue
        for key, item in value.items():
            escaped = str(key).replace("~", "~0").replace("/", "~1")
            queue.append((f"{pointer}/{escaped}", (*keys, str(key)), item, depth + 1))
    return found


def _answers_guess(pointer: str, value: Any) -> dict[str, Any] | None:
    if isinstance(value, list) and value and all(isinstance(i, Mapping) for i in value):
        names = set().union(*(set(i) for i in value))
        item: dict[str, str] = {}
        for field_name, spellings in _ANSWER_ITEM_FIELDS.items():
            spelled = next((s for s in spellings if s in names), None)
            if spelled is None:
                continue
            pointer_to = "/" + spelled.replace("~", "~0").replace("/", "~1")
            if pointer_to not in item.values():
                item[field_name] = pointer_to
        if "key" not in item and "label" in item:
            item["key"] = item.pop("label")
        if "key" not in item or "value" not in item:
            return None
        return {"at": pointer, "shape": "list", **item}
    if (
        isinstance(value, Mapping)
        and value
        and all(
            not isinstance(v, Mapping | list) or isinstance(v, list)
            for v in value.values()
        )
    ):
        return {"at": pointer, "shape": "object"}
    return None


def suggest(document: Any, handler_names: Any = ()) -> dict[str, Any]:
    """A mapping for ``document`` (a stored body), as JSON: a guess to preview.

    The handler name is the first string whose value is one of
    ``handler_names`` (the registered handlers), else a string under a key
    named like a handler; the answers are a list of objects with a key and a
    value field, or an object of plain values, under a key named like answers
    (``answers``, ``values``, ``fields``...); ids are strings or integers under
    keys named like them (``conversation.id``, ``sessionId``, ``user.id``...).
    What it cannot place it leaves out (the defaults then apply).
    """
    names = set(handler_names)
    nodes = _nodes(document)
    out: dict[str, Any] = {}
    scalar = [
        (p, keys, v)
        for p, keys, v in nodes
        if keys
        and (isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)))
    ]
    handler = next((p for p, _, v in scalar if isinstance(v, str) and v in names), None)
    if handler is None:
        handler = next(
            (
                p
                for p, keys, v in scalar
                if isinstance(v, str)
                and any(h in _squash(keys[-1]) for h in _HANDLER_HINTS)
            ),
            None,
        )
    if handler is not None:
        out["handler_name"] = handler
    for field_name, hints in _ID_HINTS.items():
        for p, keys, _ in scalar:
            last = _squash(keys[-1])
            parent = _squash(keys[-2]) if len(keys) > 1 else ""
            if (last.endswith("id") and any(h in last for h in hints)) or (
                last == "id" and any(h in parent for h in hints)
            ):
                out[field_name] = p
                break
    candidates = [(p, v) for p, keys, v in nodes if keys and answer_like(keys[-1])]
    for p, v in candidates:
        guess = _answers_guess(p, v)
        if guess is not None:
            out["answers"] = guess
            break
    return out
