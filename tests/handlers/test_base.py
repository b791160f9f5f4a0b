"""The handler contract (handlers/base.py): requests, answers, what a handler must be."""

import dataclasses

import pytest

from handlers import WebhookHandler, WebhookRequest, register
from handlers.base import HANDLER_NAME_RE, Answer
from handlers.exceptions import InvalidHandler


def test_form_values_follow_form_order_and_the_last_answer_wins():
    request = WebhookRequest(
        handler_name="save-form",
        answers=(
            Answer(key="name", value="Ada"),
            Answer(key="age", value=36),
            Answer(key="name", value="Ada L."),
        ),
    )

    assert list(request.form_values) == ["name", "age"]
    assert dict(request.form_values) == {"name": "Ada L.", "age": 36}
    assert len(request.answers) == 3  # both answers to "name" kept


def test_form_values_are_read_only():
    request = WebhookRequest(handler_name="x", answers=(Answer(key="a", value=1),))

    with pytest.raises(TypeError):
        request.form_values["a"] = 2  # type: ignore[index]


def test_answers_and_requests_are_frozen_with_defaults():
    answer = Answer(key="email", value="a@b.example")

    assert (answer.label, answer.input_type) == ("", "")
    with pytest.raises(dataclasses.FrozenInstanceError):
        answer.value = "other"  # type: ignore[misc]
    assert WebhookRequest(handler_name="x").form_values == {}


@pytest.mark.parametrize(
    ("name", "valid"),
    [("division-handler", True), ("a.b_c-1", True), ("has space", False), ("", False)],
)
def test_handler_names(name, valid):
    assert bool(HANDLER_NAME_RE.match(name)) is valid


def test_a_handler_without_handle_is_refused(handler_registry):
    class Lazy(WebhookHandler):
        name = "lazy"

    with pytest.raises(InvalidHandler, match="handle"):
        register(Lazy)


def test_handle_unimplemented_names_the_class():
    class Bare(WebhookHandler):
        name = "bare"

    with pytest.raises(NotImplementedError, match="Bare must implement handle"):
        Bare().handle(WebhookRequest(handler_name="bare"), None)  # type: ignore[arg-type]


def test_has_follow_up_only_when_overridden():
    class Quick(WebhookHandler):
        name = "quick"

        def handle(self, request, response):
            pass

    class Later(Quick):
        name = "later"

        def follow_up(self, request):
            pass

    assert not Quick.has_follow_up()
    assert Later.has_follow_up()
