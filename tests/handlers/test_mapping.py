"""A bot's wire mapping: JSON Pointers, their validation, and reading a body with one."""

from __future__ import annotations

import pytest

from handlers.mapping import (
    MappingError,
    WireMapping,
    pointer_trouble,
    resolve,
    suggest,
)
from handlers.wire import WireError, parse_delivery

FOREIGN = {
    "block": {"handlerName": "save-form"},
    "conversation": {"id": "c-9"},
    "user": {"id": 42},
    "meta": {"deliveryId": "d-1", "a/b": "slash", "m~n": "tilde"},
    "answers": [
        {"q": "Name", "a": "Ann", "kind": "text"},
        {"q": "Email", "a": "ann@example.com", "kind": "email"},
    ],
}
MAPPING = {
    "handler_name": "/block/handlerName",
    "conversation_id": "/conversation/id",
    "user_id": "/user/id",
    "delivery_id": "/meta/deliveryId",
    "answers": {
        "at": "/answers",
        "shape": "list",
        "key": "/q",
        "value": "/a",
        "type": "/kind",
    },
}


def parse(payload, mapping=None):
    return parse_delivery(
        payload, headers={}, mapping=WireMapping.from_json(mapping) if mapping else None
    )


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        ("", FOREIGN),
        ("/block/handlerName", "save-form"),
        ("/meta/a~1b", "slash"),
        ("/meta/m~0n", "tilde"),
        ("/answers/1/a", "ann@example.com"),
        ("/answers/01/a", None),  # RFC 6901: no leading zeros
        ("/answers/2", None),
        ("/answers/-", None),
        ("/block/handlerName/deeper", None),
        ("/nothing", None),
    ],
)
def test_resolve_follows_rfc_6901(pointer, expected):
    assert resolve(FOREIGN, pointer) == expected


@pytest.mark.parametrize(
    ("pointer", "trouble"),
    [
        ("/block/name", "/block has no key 'name'"),
        ("/nothing/at/all", "the body has no key 'nothing'"),
        ("/answers/5/q", "/answers is a list of 2, with no item '5'"),
        ("/block/handlerName/x", "/block/handlerName is a string, with nothing inside"),
        ("/block/handlerName", None),
    ],
)
def test_pointer_trouble_says_where_a_pointer_stops(pointer, trouble):
    assert pointer_trouble(FOREIGN, pointer) == trouble


def test_a_foreign_shape_reads_with_its_mapping():
    delivery = parse(FOREIGN, MAPPING)
    assert delivery.handler_name == "save-form"
    assert (delivery.conversation_id, delivery.user_id, delivery.delivery_id) == (
        "c-9",
        "42",
        "d-1",
    )
    assert [(a.key, a.value, a.input_type, a.label) for a in delivery.answers] == [
        ("Name", "Ann", "text", ""),
        ("Email", "ann@example.com", "email", ""),
    ]


def test_without_a_mapping_a_foreign_shape_is_unrecognised():
    with pytest.raises(WireError, match="names no handler") as info:
        parse(FOREIGN)
    assert info.value.code == "unrecognised_payload"


def test_answers_under_another_key_are_unrecognised_not_dropped():
    with pytest.raises(WireError, match="`answers`, which looks like answers") as info:
        parse({"handler": "save-form", "answers": [{"q": "Name", "a": "Ann"}]})
    assert info.value.code == "unrecognised_payload"


def test_other_objects_beside_a_delivery_without_answers_are_fine():
    delivery = parse({"handler": "h", "user": {"id": "u", "name": "Ann"}})
    assert delivery.answers == ()


def test_a_mapping_overrides_only_what_it_sets():
    delivery = parse(
        {"handler": "h", "formValues": {"a": 1}, "session": {"key": "s-1"}},
        {"conversation_id": "/session/key"},
    )
    assert delivery.handler_name == "h"
    assert delivery.conversation_id == "s-1"
    assert [(a.key, a.value) for a in delivery.answers] == [("a", 1)]


def test_the_mapping_pointer_that_finds_no_handler_is_named():
    with pytest.raises(WireError, match=r"/block/handlerName.*\(/block has no key"):
        parse({"block": {"name": "x"}}, MAPPING)


def test_answers_of_the_wrong_shape_are_unrecognised():
    mapping = {**MAPPING, "answers": {"at": "/answers", "shape": "object"}}
    with pytest.raises(WireError, match="should be an object of answers") as info:
        parse(FOREIGN, mapping)
    assert info.value.code == "unrecognised_payload"


def test_an_object_of_answers_at_a_pointer():
    delivery = parse(
        {"handler": "h", "data": {"form": {"name": "Ann"}}}, {"answers": "/data/form"}
    )
    assert [(a.key, a.value) for a in delivery.answers] == [("name", "Ann")]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ([], "is a JSON object, not list"),
        ({"handler": "/x"}, "Unknown key 'handler'.*handler_name"),
        ({"handler_name": "block/handlerName"}, 'starts with "/".*try "/block'),
        ({"handler_name": 5}, "must be a JSON Pointer string"),
        ({"handler_name": "/a~2b"}, "`~` is written `~0`"),
        ({"handler_name": "/" + "x" * 600}, "limit is 500"),
        ({"answers": {"shape": "list"}}, "needs `at`"),
        ({"answers": {"at": "/a", "shape": "table"}}, "answers.shape"),
        (
            {"answers": {"at": "/a", "colour": "/c"}},
            "Unknown key 'colour' in `answers`",
        ),
        (
            {"answers": {"at": "/a", "shape": "object", "key": "/k"}},
            "read the items of a list",
        ),
        ({"answers": 3}, "`answers` must be a JSON Pointer, or an object"),
    ],
)
def test_a_mapping_that_cannot_be_used_is_refused_with_a_sentence(mapping, message):
    with pytest.raises(MappingError, match=message):
        WireMapping.from_json(mapping)


def test_a_mapping_round_trips_through_json():
    mapping = WireMapping.from_json(MAPPING)
    assert WireMapping.from_json(mapping.to_json()) == mapping
    assert mapping.to_json() == MAPPING
    assert not WireMapping.from_json({})


def test_a_suggested_mapping_reads_the_foreign_shape():
    suggested = suggest(FOREIGN, handler_names={"save-form", "other"})
    assert suggested["handler_name"] == "/block/handlerName"
    assert suggested["conversation_id"] == "/conversation/id"
    assert suggested["user_id"] == "/user/id"
    assert suggested["delivery_id"] == "/meta/deliveryId"
    assert suggested["answers"] == {
        "at": "/answers",
        "shape": "list",
        "key": "/q",
        "type": "/kind",
        "value": "/a",
    }
    delivery = parse(FOREIGN, suggested)
    assert [(a.key, a.value) for a in delivery.answers] == [
        ("Name", "Ann"),
        ("Email", "ann@example.com"),
    ]


def test_the_issues_example_gets_a_mapping_that_reads_it():
    body = {
        "block": {"handlerName": "save-form"},
        "answers": [{"q": "Name", "a": "Ann"}],
    }
    delivery = parse(body, suggest(body, handler_names={"save-form"}))
    assert delivery.handler_name == "save-form"
    assert [(a.key, a.value) for a in delivery.answers] == [("Name", "Ann")]


def test_a_suggestion_leaves_out_what_it_cannot_place():
    assert suggest({"x": 1, "y": [1, 2]}, handler_names={"h"}) == {}
    assert suggest({"handler": "h", "values": {"a": 1}}) == {
        "handler_name": "/handler",
        "answers": {"at": "/values", "shape": "object"},
    }
