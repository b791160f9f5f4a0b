"""The console and its diagnosis pages against hostile data, as a logged-in staff user.

Everything shown comes from callers: question keys, titles and values,
handler names, tokens' headers and claims, request headers. Each page must
stay bounded (a form with 10,000 questions, 10,000 forms) in queries and
bytes, and escape every payload: the raw text never appears in the HTML,
its escaped form does.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from submissions.models import Bot, FormSubmission, WebhookEvent

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
TEXTAREA = "</textarea><b onmouseover=alert(3)>x</b>"
SVG = "</title></rect><svg onload=alert(4)><script>alert(5)</script></svg>"
QUOTE = '\'><iframe srcdoc="<script>alert(6)</script>">'
JS_URL = "javascript:alert(7)"
#: Each can break out of text, an attribute (either quote), a textarea or an SVG title.
PAYLOADS = [SCRIPT, IMG, TEXTAREA, SVG, QUOTE]
#: An href, src or action that starts a javascript: URL, however quoted.
JS_ATTRIBUTE = re.compile(
    r"""(?:href|src|action|xlink:href)\s*=\s*["']?\s*javascript:""", re.I
)


def assert_escaped(html: str, *, shown: list[str]) -> None:
    """No payload is in ``html`` raw; each of ``shown`` is, escaped."""
    for payload in PAYLOADS:
        assert payload not in html
    for tag in ("<script>alert", "<img src=x", "<svg onload", "<iframe", "<b onmouse"):
        assert tag not in html
    assert not JS_ATTRIBUTE.search(html)
    for payload in shown:
        assert escape(payload) in html, payload


def page(client: Any, url: str, **params: Any) -> str:
    response = client.get(url, params)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def form_table_url(bot: Bot, handler_name: str) -> str:
    return reverse("admin:form-table", args=[bot.pk, handler_name])


# -- escaping -------------------------------------------------------------------------


@pytest.fixture
def hostile(deliver, bot) -> dict[str, Any]:
    """Deliveries whose every caller-chosen text is a payload, to two handler names."""
    bot.name = SCRIPT + " bot"
    bot.save()
    answers = [
        {"key": payload, "title": IMG + " title", "value": value}
        for payload, value in zip(
            PAYLOADS, [TEXTAREA, SVG, QUOTE, SCRIPT, IMG], strict=True
        )
    ]
    answers.append({"key": "website", "title": "Website", "value": JS_URL})
    for handler in (SCRIPT, SVG):  # unrouted: no handler has such a name
        response = deliver(
            {"handler": handler, "formValues": answers, "userId": QUOTE},
            HTTP_X_CUSTOM=SCRIPT,
            HTTP_REFERER=JS_URL,
        )
        assert response.status_code == 404
    # A refused token with payloads in its header and claims, and a body that is not JSON.
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "HS256", "kid": SCRIPT}).encode()
    ).rstrip(b"=")
    claims = base64.urlsafe_b64encode(
        json.dumps({"sub": IMG, "iss": SVG, "aud": JS_URL}).encode()
    ).rstrip(b"=")
    refused = deliver(
        body=("handler=" + SCRIPT).encode(),
        token=f"{header.decode()}.{claims.decode()}.c2ln",
        HTTP_X_CUSTOM=TEXTAREA,
    )
    assert refused.status_code == 401
    return {"bot": bot, "refused": WebhookEvent.objects.get(status="rejected")}


def test_the_overview_escapes_names_in_its_svg_charts_and_tables(admin_client, hostile):
    html = page(admin_client, reverse("admin:overview"))

    assert "<svg" in html  # the chart is drawn
    assert_escaped(html, shown=[f"{SCRIPT} bot / {SVG}", SCRIPT])


def test_the_forms_list_escapes_names_and_questions(admin_client, hostile):
    html = page(admin_client, reverse("admin:forms"))

    assert_escaped(html, shown=[SCRIPT, SVG])
    assert f'href="{form_table_url(hostile["bot"], SVG)}"' in html


@pytest.mark.parametrize("handler", [SCRIPT, SVG])
def test_a_forms_table_escapes_keys_titles_and_values(admin_client, hostile, handler):
    html = page(admin_client, form_table_url(hostile["bot"], handler))

    assert_escaped(html, shown=[*PAYLOADS, IMG + " title"])
    assert escape(JS_URL) in html  # shown as text, never a link


def test_the_bot_page_and_its_diagnosis_escape_the_token_and_body(
    admin_client, hostile
):
    html = page(
        admin_client, reverse("admin:submissions_bot_change", args=[hostile["bot"].pk])
    )

    assert "Diagnose" in html
    # json.dumps in the decoded token turns each payload's `"` into `\"`.
    assert_escaped(html, shown=[SCRIPT, "onerror=alert(2)", "svg onload=alert(4)"])
    assert escape(JS_URL) in html


def test_the_event_pages_escape_headers_payload_and_token(admin_client, hostile):
    for event in WebhookEvent.objects.all():
        html = page(
            admin_client,
            reverse("admin:submissions_webhookevent_change", args=[event.pk]),
        )
        assert_escaped(html, shown=[SCRIPT])
    html = page(admin_client, reverse("admin:submissions_webhookevent_changelist"))
    assert_escaped(html, shown=[])
    html = page(admin_client, reverse("admin:submissions_formsubmission_changelist"))
    assert_escaped(html, shown=[])
    submission = FormSubmission.objects.first()
    html = page(
        admin_client,
        reverse("admin:submissions_formsubmission_change", args=[submission.pk]),
    )
    assert_escaped(html, shown=[*PAYLOADS])


# -- a form of 10,000 questions ----------------------------------------------------------

MANY = 10_000


def one_delivery_of(deliver, count: int, handler: str = "wide") -> None:
    answers = [
        {"key": f"q{n:05d}", "title": f"Question {n}", "value": f"answer {n}"}
        for n in range(count)
    ]
    response = deliver({"handler": handler, "formValues": answers})
    assert response.status_code in (200, 404)


def th_count(html: str) -> int:
    table = html[html.index('<table id="form-table"') :]
    table = table[: table.index("</table>")]
    return len(re.findall(r"<th[\s>]", table))


@pytest.fixture
def wide(deliver, bot) -> Bot:
    one_delivery_of(deliver, MANY)
    return bot


def test_a_form_of_10000_questions_shows_a_bounded_page_of_columns(
    admin_client, wide, django_assert_max_num_queries
):
    with django_assert_max_num_queries(15):
        response = admin_client.get(form_table_url(wide, "wide"))

    html = response.content.decode()
    assert response.status_code == 200
    assert len(response.content) < 200_000
    assert th_count(html) <= 51  # "Received" and a page of questions
    assert "Question 0" in html
    assert "answer 49" in html
    assert "Question 9999" not in html
    # A visible note, and a way to reach the rest.
    assert "Questions 1 to 50 of 10,000" in html
    nxt = re.search(r'<a href="\?([^"]*)"[^>]*>next questions', html)
    assert nxt, html[-3000:]

    last = admin_client.get(form_table_url(wide, "wide") + "?cols=200")
    html = last.content.decode()
    assert "Questions 9,951 to 10,000 of 10,000" in html
    assert "Question 9999" in html
    assert "answer 9999" in html
    assert "Question 0<" not in html
    assert len(last.content) < 200_000


def test_the_column_page_keeps_the_filters_and_survives_nonsense(admin_client, wide):
    html = page(admin_client, form_table_url(wide, "wide"), q="answer 60", cols="2")

    assert "Questions 51 to 100 of 10,000" in html
    assert "answer 60" in html
    nxt = re.search(r'<a href="\?([^"]*)"[^>]*>next questions', html)
    assert "q=answer+60" in nxt.group(1)
    for nonsense in ("0", "-1", "abc", "9" * 30, "\x00"):
        response = admin_client.get(form_table_url(wide, "wide"), {"cols": nonsense})
        assert response.status_code in (200, 400)
        if response.status_code == 200:
            assert "Questions 1 to 50 of 10,000" in response.content.decode() or (
                "Questions 9,951 to 10,000" in response.content.decode()
            )


def test_10000_questions_over_many_deliveries_stay_bounded_too(
    admin_client, deliver, bot, django_assert_max_num_queries
):
    for batch in range(100):  # 100 deliveries of 100 distinct keys each
        answers = {f"b{batch:03d}_q{n:03d}": n for n in range(100)}
        assert deliver({"handler": "many", "formValues": answers}).status_code == 404

    with django_assert_max_num_queries(15):
        response = admin_client.get(form_table_url(bot, "many"))

    html = response.content.decode()
    assert th_count(html) <= 51
    assert "Questions 1 to 50 of 10,000" in html
    assert len(response.content) < 200_000
    # The newest page of submissions has answers only in later columns: said so.
    assert "50 submissions" in html or "100 submissions" in html


def test_the_forms_list_and_overview_stay_bounded_with_10000_questions(
    admin_client, wide, django_assert_max_num_queries
):
    with django_assert_max_num_queries(15):
        forms = admin_client.get(reverse("admin:forms"))
    assert forms.status_code == 200
    assert len(forms.content) < 100_000
    assert "10000: " in forms.content.decode()

    with django_assert_max_num_queries(20):
        overview = admin_client.get(reverse("admin:overview"))
    assert overview.status_code == 200
    assert len(overview.content) < 100_000


# -- many forms, many unrouted names ------------------------------------------------------


def test_many_forms_are_paginated_and_the_overview_keeps_its_charts_small(
    admin_client, deliver, bot, django_assert_max_num_queries
):
    names = [f"form-{n:03d}" for n in range(130)]
    for name in names:  # unrouted: each name is a form, and a row needing attention
        assert deliver({"handler": name, "formValues": {"a": 1}}).status_code == 404

    with django_assert_max_num_queries(15):
        first = page(admin_client, reverse("admin:forms"))
    assert first.count('class="handler-') == 100
    assert "130 forms" in first
    second = page(admin_client, reverse("admin:forms"), p="2")
    assert second.count('class="handler-') == 30

    with CaptureQueriesContext(connection) as queries:
        html = page(admin_client, reverse("admin:overview"))
    assert len(queries) <= 20
    chart = html[html.index('id="form-chart"') :]
    chart = chart[: chart.index("</figure>")]
    assert chart.count("<rect") <= 9  # the 8 biggest forms and "other forms", one day
    assert "122 other forms" in chart
    unrouted = html[html.index('id="attention-unrouted"') :]
    unrouted = unrouted[: unrouted.index("</table>")]
    assert unrouted.count("<tr>") <= 21
    assert "110 more" in html


def test_a_handler_name_with_a_slash_or_dots_has_a_working_table(
    admin_client, deliver, bot
):
    for name in ("a/b", "..", "x?y#z", "100%"):
        assert deliver({"handler": name, "formValues": {"k": name}}).status_code == 404

    html = page(admin_client, reverse("admin:forms"))
    for name in ("a/b", "..", "x?y#z", "100%"):
        url = form_table_url(bot, name)
        assert f'href="{escape(url)}"' in html
        table = page(admin_client, url)
        assert f"<td>{escape(name)}</td>" in table
