"""Property-based fuzzing of the webhook endpoint: no input gets a 5xx.

Five generators, all sent through the real endpoint with DRF's client and
stored in the real database:

- arbitrary bytes as the body, signed;
- arbitrary JSON values (huge integers and floats, NaN/Infinity, NUL, unpaired
  surrogates written into the raw text as ``\\ud800`` escapes or as invalid
  UTF-8), signed;
- delivery-shaped objects with any type in each known field (every alias from
  ``handlers.wire``), signed;
- arbitrary Authorization headers, and arbitrary Content-Types, around a
  valid body.

Handlers are ``save-form`` (never raises) or unknown names, so the documented
500 ``handler_error`` cannot occur: any 5xx is a bug. Every reply must be an
error body ``{"error", "detail"}`` or, on 200, a reply ``{"blocks", "variables"}``,
and every request must be stored exactly once with the answer it got.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from handlers.wire import (
    ANSWER_KEY_FIELDS,
    ANSWER_LABEL_FIELDS,
    ANSWER_TYPE_FIELDS,
    CONVERSATION_FIELDS,
    DELIVERY_FIELDS,
    FORM_FIELDS,
    HANDLER_FIELDS,
    USER_FIELDS,
)
from submissions.models import Bot, WebhookEvent
from submissions.tokens import sign_token

pytestmark = pytest.mark.django_db


def fuzz(max_examples: int) -> settings:
    """Modest budgets: the whole module runs in well under a minute."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
        ],
    )


#: The event status each reply status must be stored with (a repeated delivery
#: id is stored as "duplicate", whatever it answers).
STORED_STATUS = {200: "processed", 404: "unrouted", 422: "unparsed"}
REJECTION_STATUSES = {400, 401, 409, 413, 415, 422}

# --- strategies ----------------------------------------------------------------

#: Text PostgreSQL can store: no unpaired surrogates, no NUL.
clean_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=30,
)
nasty_text = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "nul\x00inside",
        "\ud800",
        "\udfff",
        "pair\ud83d\ude00ok",
        "lone\udc00low",
        "\ufeffbom",
        "\u202eright-to-left",
        "\U0001f4a5",
        "x" * 256,
        "x" * 10_240,
        "save-form",
        "division-handler",
        "../../etc/passwd",
        "'; DROP TABLE submissions_webhookevent; --",
    ]
)
#: Scalars that pass ``parse_json``: the delivery generator's storable half.
clean_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=1 - 10**1000, max_value=10**1000 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    clean_text,
)
hostile_scalars = st.one_of(
    st.text(max_size=30),
    nasty_text,
    st.sampled_from([10**1000, -(10**1000), 10**1100]),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(clean_scalars, hostile_scalars)


def json_of(leaves: st.SearchStrategy, keys: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)
        ),
        max_leaves=12,
    )


json_keys = st.one_of(clean_text, nasty_text)
clean_json = json_of(clean_scalars, clean_text)
json_values = json_of(scalars, json_keys)
#: How a Python value becomes body bytes: ASCII-escaped (lone surrogates become
#: "\ud800" escapes in the text) or raw UTF-8 (lone surrogates become bytes
#: that are not UTF-8).
encodings = st.sampled_from(["escaped", "raw"])


def encode(value: Any, encoding: str) -> bytes:
    if encoding == "escaped":
        return json.dumps(value, ensure_ascii=True).encode("ascii")
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def fields_of(leaves: st.SearchStrategy) -> st.SearchStrategy:
    """Any type a known field might hold: a scalar, a list or an object."""
    return st.one_of(
        leaves,
        st.lists(leaves, max_size=3),
        st.dictionaries(clean_text, leaves, max_size=3),
    )


@st.composite
def deliveries(draw: st.DrawFn) -> dict[str, Any]:
    """An object shaped like a delivery, each known field of a random type.

    Half the examples use only storable values, so they reach the database.
    """
    clean = draw(st.booleans())
    leaves = clean_scalars if clean else scalars
    values = clean_json if clean else json_values
    field = fields_of(leaves)
    # Ids that parse (strings, integers, null) most of the time when clean.
    ident = st.one_of(clean_text, st.integers(), st.none(), field) if clean else field
    text_field = st.one_of(clean_text, st.none(), field) if clean else field

    def some(
        names: tuple[str, ...], strategy: st.SearchStrategy, min_size: int = 0
    ) -> dict[str, Any]:
        return draw(
            st.dictionaries(
                st.sampled_from(names), strategy, min_size=min_size, max_size=2
            )
        )

    def answer() -> Any:
        if not draw(st.integers(0, 4)):
            return draw(leaves)
        return {
            **some(ANSWER_KEY_FIELDS, ident, min_size=int(clean)),
            **some(ANSWER_LABEL_FIELDS, text_field),
            **some(ANSWER_TYPE_FIELDS, text_field),
            **({"value": draw(values)} if draw(st.booleans()) else {}),
        }

    payload: dict[str, Any] = draw(st.dictionaries(clean_text, values, max_size=2))
    handler_names = st.sampled_from(
        ["save-form", "fuzz-no-such-handler", " save-form "]
    )
    wrong_type = not clean or not draw(st.integers(0, 3))
    payload[draw(st.sampled_from(HANDLER_FIELDS))] = draw(
        st.one_of(handler_names, field) if wrong_type else handler_names
    )
    form_values = st.one_of(
        st.dictionaries(clean_text if clean else json_keys, values, max_size=5),
        st.lists(st.builds(answer), max_size=5),
        *([field] if wrong_type else []),
    )
    for names, strategy in (
        (FORM_FIELDS, form_values),
        (CONVERSATION_FIELDS, ident),
        (USER_FIELDS, ident),
        (DELIVERY_FIELDS, ident),
    ):
        if draw(st.booleans()):
            payload[draw(st.sampled_from(names))] = draw(strategy)
    return payload


header_text = st.text(
    # Latin-1, as WSGI servers decode headers. NUL is left out of the
    # Content-Type: Django's request parsing chokes on it before any middleware
    # (webhookproject/wsgi.py guards the real servers, and
    # test_embedded_servers sends one to runserver).
    alphabet=st.characters(min_codepoint=1, max_codepoint=255),
    max_size=60,
)
content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=UTF8",
            "application/json; charset=latin-1",
            "application/json;;;",
            "text/plain",
            "",
        ]
    ),
    header_text,
)

# --- sending and checking --------------------------------------------------------


def post(
    client: APIClient,
    bot: Bot,
    body: bytes,
    *,
    signed: bool = True,
    authorization: str | None = None,
    content_type: str = "application/json",
) -> Any:
    """POST ``body``, signed with the bot's secret unless ``signed=False``."""
    if signed:
        authorization = f"Bearer {sign_token(bot.secret, body=body)}"
    extra = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    return client.generic(
        "POST",
        reverse("webhook", args=[bot.slug]),
        data=body,
        content_type=content_type,
        **extra,
    )


def assert_answered_and_stored_once(response: Any, events_before: int) -> None:
    status = response.status_code
    assert status < 500, response.content[:500]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert isinstance(body, dict)
    event(f"{status} {body.get('error', '')}")  # --hypothesis-show-statistics
    if status == 200:
        assert set(body) == {"blocks", "variables"}
        assert isinstance(body["blocks"], list)
        assert isinstance(body["variables"], dict)
    else:
        assert status in REJECTION_STATUSES | {404}, status
        assert set(body) == {"error", "detail"}
        assert isinstance(body["error"], str)
        assert body["error"]
        assert isinstance(body["detail"], str)
        assert body["detail"].strip()

    assert WebhookEvent.objects.count() == events_before + 1
    stored = WebhookEvent.objects.get(pk=int(response["X-Webhook-Event-Id"]))
    assert stored.response_status == status
    if stored.status != "duplicate":
        assert stored.status == STORED_STATUS.get(status, "rejected")
        assert stored.error_code == body.get("error", "")


@fuzz(200)
@given(body=st.binary(max_size=512))
def test_any_bytes_body(api_client: APIClient, bot: Bot, body: bytes):
    before = WebhookEvent.objects.count()
    response = post(api_client, bot, body)
    assert_answered_and_stored_once(response, before)


@fuzz(300)
@given(value=json_values, encoding=encodings)
def test_any_json_value(api_client: APIClient, bot: Bot, value: Any, encoding: str):
    before = WebhookEvent.objects.count()
    response = post(api_client, bot, encode(value, encoding))
    assert_answered_and_stored_once(response, before)


@fuzz(500)
@given(payload=deliveries(), encoding=encodings)
def test_any_delivery_shape(
    api_client: APIClient, bot: Bot, payload: dict[str, Any], encoding: str
):
    before = WebhookEvent.objects.count()
    response = post(api_client, bot, encode(payload, encoding))
    assert_answered_and_stored_once(response, before)


@fuzz(150)
@given(
    authorization=st.one_of(
        st.none(),
        header_text,
        header_text.map(lambda text: f"Bearer {text}"),
        header_text.map(lambda text: f"Bearer {text}.{text}.{text}"),
    )
)
def test_any_authorization(api_client: APIClient, bot: Bot, authorization: str | None):
    body = json.dumps({"handler": "save-form", "formValues": {"name": "Ada"}}).encode()
    before = WebhookEvent.objects.count()
    response = post(api_client, bot, body, signed=False, authorization=authorization)
    assert_answered_and_stored_once(response, before)
    assert response.status_code == 401


@fuzz(150)
@given(content_type=content_types)
def test_any_content_type(api_client: APIClient, bot: Bot, content_type: str):
    body = json.dumps({"handler": "save-form", "formValues": {"name": "Ada"}}).encode()
    before = WebhookEvent.objects.count()
    response = post(api_client, bot, body, content_type=content_type)
    assert_answered_and_stored_once(response, before)
    assert response.status_code in {200, 415}


# --- text the database cannot hold, from the token and the headers -------------------

#: Any text at all: lone surrogates and NUL included.
any_text = st.one_of(
    st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40),
    nasty_text,
)
claim_values = st.one_of(any_text, scalars, st.lists(any_text, max_size=3))
VALID = json.dumps({"handler": "save-form", "formValues": {"name": "Ada"}}).encode()


def _b64(value: Any) -> str:
    raw = json.dumps(value, ensure_ascii=True).encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _signed(header: dict[str, Any], claims: dict[str, Any], secret: str) -> str:
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    signature = hmac.new(
        secret.encode(), signing_input.encode("ascii"), hashlib.sha256
    ).digest()
    return (
        f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    )


@fuzz(200)
@given(
    header=st.dictionaries(
        st.sampled_from(["kid", "crit", "typ", "cty", "x5u", "jku", "zip"]) | any_text,
        claim_values,
        max_size=3,
    ),
    claims=st.dictionaries(
        st.sampled_from(["jti", "body_sha256", "exp", "nbf", "iat", "sub", "aud"])
        | any_text,
        claim_values,
        max_size=4,
    ),
)
def test_any_text_in_the_tokens_header_and_claims(
    api_client: APIClient, bot: Bot, header: dict[str, Any], claims: dict[str, Any]
):
    token = _signed({**header, "alg": "HS256"}, claims, bot.secret)
    before = WebhookEvent.objects.count()
    response = post(
        api_client, bot, VALID, signed=False, authorization=f"Bearer {token}"
    )
    assert_answered_and_stored_once(response, before)


#: Latin-1 with NUL and C1 controls: everything a WSGI header value can hold.
wire_header_text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=300
)


@fuzz(200)
@given(
    headers=st.dictionaries(
        st.sampled_from(
            [
                "HTTP_IDEMPOTENCY_KEY",
                "HTTP_X_REQUEST_ID",
                "HTTP_X_TRACE",
                "HTTP_X_WEBHOOK_KEY",
                "HTTP_USER_AGENT",
                "HTTP_X_\x00",
                "HTTP_HOST",
                "REMOTE_ADDR",
                "QUERY_STRING",
            ]
        ),
        wire_header_text,
        max_size=4,
    )
)
def test_any_text_in_any_header(
    api_client: APIClient, bot: Bot, settings: Any, headers: dict[str, str]
):
    before = WebhookEvent.objects.count()
    response = api_client.generic(
        "POST",
        reverse("webhook", args=[bot.slug]),
        data=VALID,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {sign_token(bot.secret, body=VALID)}",
        **headers,
    )
    assert_answered_and_stored_once(response, before)
    stored = WebhookEvent.objects.get(pk=int(response["X-Webhook-Event-Id"]))
    assert "\x00" not in json.dumps(stored.headers, ensure_ascii=False)
