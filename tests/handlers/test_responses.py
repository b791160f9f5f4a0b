import pytest

from handlers import Button, InvalidReply, ResponseBuilder
from handlers.wire import render_reply

BLOCK = "5f1b2c3d4e5f60718293a4b5"


def test_items_render_in_order_with_variables():
    response = (
        ResponseBuilder()
        .add_text("Hello")
        .add_buttons(
            "Pick one",
            [
                "Plain",
                Button("Go", block_id=BLOCK),
                Button("Docs", url="https://example.com"),
            ],
        )
        .add_quick_replies("Rate us", ["1", Button("5", payload="five")])
        .add_image("https://example.com/a.png", alt="A")
        .push_block_pointer(BLOCK)
        .set_variable("score", 5)
    )
    assert render_reply(response) == {
        "blocks": [
            {"type": "text", "text": "Hello"},
            {
                "type": "buttons",
                "text": "Pick one",
                "buttons": [
                    {"title": "Plain"},
                    {"title": "Go", "blockId": BLOCK},
                    {"title": "Docs", "url": "https://example.com"},
                ],
            },
            {
                "type": "quickReplies",
                "text": "Rate us",
                "options": [{"title": "1"}, {"title": "5", "payload": "five"}],
            },
            {"type": "image", "url": "https://example.com/a.png", "alt": "A"},
            {"type": "blockPointer", "id": BLOCK},
        ],
        "variables": {"score": 5},
    }


def test_empty_reply():
    assert render_reply(ResponseBuilder()) == {"blocks": [], "variables": {}}


@pytest.mark.parametrize(
    "block_id", ["123", "zz1b2c3d4e5f60718293a4b5", "", None, BLOCK + "0"]
)
def test_block_ids_are_24_hex_characters(block_id):
    with pytest.raises(ValueError, match="24 hexadecimal"):
        ResponseBuilder().push_block_pointer(block_id)


def test_invalid_arguments_fail_at_the_call():
    builder = ResponseBuilder()
    with pytest.raises(ValueError, match="non-empty"):
        builder.add_text("  ")
    with pytest.raises(ValueError, match="at least one"):
        builder.add_buttons("Pick", [])
    with pytest.raises(ValueError, match="at most one"):
        Button("x", url="https://a", payload="p")
    with pytest.raises(TypeError, match="Button or a string"):
        builder.add_quick_replies("Pick", [3])
    assert builder.items == []


def test_unserialisable_variable_is_reported():
    builder = ResponseBuilder().set_variable("when", object())
    with pytest.raises(InvalidReply, match="not JSON-serialisable"):
        render_reply(builder)
