"""The webhook's OpenAPI description (submissions/openapi.py) against the intake."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from submissions.openapi import WEBHOOK_ERRORS
from submissions.rejections import MethodNotAllowed
from submissions.tokens import TOKEN_ERROR_CODES

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def operation() -> dict:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return schema["paths"]["/webhooks/{bot_slug}/"]["post"]


def documented(operation: dict) -> dict[int, set[str]]:
    return {
        int(status): set(
            response["content"]["application/json"]["schema"]["properties"]["error"][
                "enum"
            ]
        )
        for status, response in operation["responses"].items()
        if status != "200"
    }


def test_every_token_error_is_documented_under_401(operation):
    assert documented(operation)[401] == set(TOKEN_ERROR_CODES)


def test_the_operation_lists_exactly_the_documented_errors(operation):
    # Only POST is routed: a refused method has no operation to sit under.
    assert documented(operation) == {
        status: set(codes)
        for status, (codes, _) in WEBHOOK_ERRORS.items()
        if status != MethodNotAllowed.status_code
    }


@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        ({"path": "/webhooks/nobody/"}, 404),
        ({"body": b"not json"}, 400),
        ({"body": b"[]"}, 400),
        ({"content_type": "text/plain"}, 415),
        ({"token": None}, 401),
        ({"token": "not-a-jwt"}, 401),
        ({"payload": {"handler": "no-such-handler"}}, 404),
    ],
)
def test_what_the_intake_answers_is_documented_under_its_status(
    operation, deliver, api_client, request_kwargs, status
):
    if "path" in request_kwargs:
        response = api_client.post(request_kwargs["path"], data={}, format="json")
    else:
        kwargs = {"payload": {"handler": "save-form"}, **request_kwargs}
        response = deliver(kwargs.pop("payload"), **kwargs)

    assert response.status_code == status
    assert response.json()["error"] in documented(operation)[status]
