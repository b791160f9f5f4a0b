import pytest

from handlers import Answer
from handlers.wire import WireError, build_payload, parse_delivery, parse_json


def parse(payload, headers=None):
    return parse_delivery(payload, headers=headers or {})


def test_object_form_values_become_ordered_answers():
    delivery = parse({"handler": "h", "formValues": {"b": 1, "a": "x", "c": [1, 2]}})
    assert delivery.answers == (
        Answer(key="b", value=1),
        Answer(key="a", value="x"),
        Answer(key="c", value=[1, 2]),
    )


def test_list_form_values_with_every_alias():
    delivery = parse(
        {
            "handler": "h",
            "formValues": [
                {
                    "key": "email",
                    "title": "Your email",
                    "type": "email",
                    "value": "a@b.c",
                },
                {
                    "name": "age",
                    "question": "How old?",
                    "inputType": "number",
                    "value": 41,
                },
                {"id": 7, "label": "Seven", "value": None},
                {"key": "no_value"},
            ],
        }
    )
    assert delivery.answers == (
        Answer(key="email", value="a@b.c", label="Your email", input_type="email"),
        Answer(key="age", value=41, label="How old?", input_type="number"),
        Answer(key="7", value=None, label="Seven"),
        Answer(key="no_value", value=None),
    )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"handler": "h", "conversationId": "c1", "userId": "u1", "id": "d1"},
            ("h", "c1", "u1", "d1"),
        ),
        (
            {"handlerName": "h", "conversation_id": "c2", "user_id": 5, "eventId": 9},
            ("h", "c2", "5", "9"),
        ),
        ({"handler_name": " h ", "sessionId": "s3"}, ("h", "s3", "", "")),
    ],
)
def test_field_aliases(payload, expected):
    delivery = parse(payload)
    assert (
        delivery.handler_name,
        delivery.conversation_id,
        delivery.user_id,
        delivery.delivery_id,
    ) == expected


def test_camel_case_wins_over_aliases():
    delivery = parse({"handler": "camel", "handler_name": "snake"})
    assert delivery.handler_name == "camel"


def test_delivery_id_falls_back_to_the_idempotency_header():
    assert parse({"handler": "h"}, {"Idempotency-Key": "k-1"}).delivery_id == "k-1"
    assert (
        parse({"handler": "h", "id": "body"}, {"Idempotency-Key": "k"}).delivery_id
        == "body"
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"handler": ""}, "non-empty string"),
        ({"handler": 12}, "not a JSON number"),
        ({"handler": ["a"]}, "not a JSON array"),
        ({"handler": "x" * 256}, "limit is 255"),
        ({"handler": "h", "formValues": "text"}, "not a JSON string"),
        ({"handler": "h", "formValues": [1]}, r"formValues\[0\]"),
        ({"handler": "h", "formValues": [{"value": 1}]}, "no `key`"),
        ({"handler": "h", "formValues": [{"key": "k", "title": 5}]}, "title"),
        ({"handler": "h", "conversationId": {"a": 1}}, "conversationId"),
        ({"handler": "h", "userId": True}, "userId"),
        ({"handler": "h", "id": "x" * 300}, "limit is 255"),
    ],
)
def test_invalid_fields_are_refused_with_a_clear_message(payload, message):
    with pytest.raises(WireError, match=message) as info:
        parse(payload)
    assert info.value.code == "invalid_payload"


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        (b"", "invalid_json", "empty"),
        (b'{"a": ', "invalid_json", "not valid JSON"),
        (b"\xff\xfe{}", "invalid_json", "UTF-8"),
        (b'{"a": NaN}', "invalid_json", "NaN"),
        (b'{"a": 1e999}', "invalid_json", "too large"),
        (b'{"a": 1, "a": 2}', "invalid_json", "appears twice"),
        (b'{"a": "x\\u0000y"}', "invalid_json", "NUL"),
        (b'{"a": "\\ud800"}', "invalid_json", "surrogate"),
        (b'{"a":' + b"[" * 100 + b"]" * 100 + b"}", "invalid_json", "nested"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json", "nested"),
        (b'{"a":' * 70 + b"1" + b"}" * 70, "invalid_json", "nested"),
        (b"[1, 2]", "invalid_payload", "not a JSON array"),
        (b'"text"', "invalid_payload", "not a JSON string"),
    ],
)
def test_parse_json_refuses_what_cannot_be_stored(raw, code, message):
    with pytest.raises(WireError, match=message) as info:
        parse_json(raw)
    assert info.value.code == code


def test_parse_json_accepts_a_bom_and_unicode():
    assert parse_json('\ufeff{"name": "Zoë 🤖"}'.encode()) == {"name": "Zoë 🤖"}


def test_build_payload_round_trips():
    payload = build_payload(
        handler_name="h", form_values={"a": "1"}, conversation_id="c", delivery_id="d"
    )
    delivery = parse(payload)
    assert delivery.handler_name == "h"
    assert delivery.answers == (Answer(key="a", value="1"),)
    assert (delivery.conversation_id, delivery.delivery_id) == ("c", "d")
