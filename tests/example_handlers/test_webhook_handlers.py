"""The example handlers, tested as a handler author would: with ``handlers.testing``."""

import pytest

from handlers.testing import deliver

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("values", "text", "result"),
    [
        ({"dividend": 10, "divisor": 4}, "10 divided by 4 is 2.5.", "2.5"),
        ({"dividend": "9", "divisor": "3"}, "9 divided by 3 is 3.", "3"),
        ({"dividend": "1,5", "divisor": 1}, "1.5 divided by 1 is 1.5.", "1.5"),
    ],
)
def test_division_divides(values, text, result):
    delivered = deliver("division-handler", values)
    assert delivered.status_code == 200
    assert delivered.texts == [text]
    assert delivered.variables == {"result": result}
    assert delivered.event.status == "processed"


def test_division_by_zero_says_so():
    delivered = deliver("division-handler", {"dividend": 1, "divisor": 0})
    assert delivered.texts == ["I can't divide by zero. Try another divisor."]
    assert delivered.variables == {}


@pytest.mark.parametrize(
    "values", [{}, {"dividend": "x", "divisor": 2}, {"dividend": True, "divisor": 1}]
)
def test_division_asks_for_two_numbers(values):
    delivered = deliver("division-handler", values)
    assert delivered.texts == ["Please give two numbers: a dividend and a divisor."]


def test_save_form_thanks_and_the_answers_are_stored():
    delivered = deliver(
        "save-form", {"name": "Ann", "email": "ann@example.com"}, user_id="u-7"
    )
    assert delivered.texts == ["Thank you! We have received your answers."]
    submission = delivered.event.submission
    assert submission.user_id == "u-7"
    assert list(submission.answers.values_list("key", "value")) == [
        ("name", "Ann"),
        ("email", "ann@example.com"),
    ]
