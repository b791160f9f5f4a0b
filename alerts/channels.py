"""The outside world: an email through Django's email backend, a JSON POST to a webhook URL.

Both raise ``DeliveryError`` (worth another try) or its subclass
``PermanentDeliveryError`` (another try would fail the same way: a refused
URL, a redirect, a 4xx answer other than 408 and 429).

A webhook goes straight to its host (no ``HTTP(S)_PROXY``), and only to an
address ``alerts.destinations`` allows, checked after the name is resolved,
the connection made to the checked address (TLS still verifies the name).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

from django.core.mail import EmailMessage

from alerts import destinations
from alerts.conf import alert_settings

USER_AGENT = "logicdialog-webhooks-alerts/1"
#: How much of a refusing webhook's answer is kept on the record (Slack says why there).
ANSWER_CHARS = 200
RETRIED_CLIENT_ERRORS = (408, 429)


class DeliveryError(Exception):
    """Sending failed; another try may succeed."""


class PermanentDeliveryError(DeliveryError):
    """Sending failed in a way another try would repeat."""


def send_email(*, to: str, subject: str, body: str) -> None:
    if any(c in to for c in "\r\n") or any(c in subject for c in "\r\n"):
        # Django refuses it too (BadHeaderError); another try would again.
        raise PermanentDeliveryError(
            "The recipient or subject holds a line break, which would start "
            "another email header: correct the recipient's address."
        )
    try:
        EmailMessage(
            subject=subject,
            body=body,
            from_email=alert_settings().from_email,
            to=[to],
        ).send()
    except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect answers the POST as an error: urllib would resend it as a GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = destinations.guarded_connection


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    # ``HTTPSConnection.connect`` opens the socket through ``_create_connection``
    # and then wraps it with the URL's host name for SNI and verification.
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = destinations.guarded_connection


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedHTTPConnection, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_GuardedHTTPSConnection, req, context=self._context)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}),  # a proxy would connect where we did not check
        _GuardedHTTPHandler,
        _GuardedHTTPSHandler,
        _NoRedirects,
    )


def _answer(raw: bytes) -> str:
    text = raw[: ANSWER_CHARS * 4].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text[:ANSWER_CHARS]


def post_webhook(*, url: str, payload: dict[str, Any], timeout: float) -> int:
    """POST ``payload`` as JSON to ``url``; the 2xx status, or ``DeliveryError``."""
    problem = destinations.webhook_url_problem(url)
    if problem:
        raise PermanentDeliveryError(problem)
    try:
        request = urllib.request.Request(  # noqa: S310 (scheme checked above)
            url.strip(),
            data=json.dumps(payload, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            method="POST",
        )
    except ValueError as exc:
        raise PermanentDeliveryError(f"This is not a valid URL: {exc}.") from None
    try:
        with _opener().open(request, timeout=timeout) as response:
            response.read(64 * 1024)
            return response.status
    except urllib.error.HTTPError as exc:
        with exc:
            answer = _answer(exc.read(ANSWER_CHARS * 4))
        detail = f"HTTP {exc.code}" + (f": {answer}" if answer else "")
        if 300 <= exc.code < 400:
            raise PermanentDeliveryError(
                f"{detail} (a redirect: set the URL it points to)."
            ) from None
        if 400 <= exc.code < 500 and exc.code not in RETRIED_CLIENT_ERRORS:
            raise PermanentDeliveryError(detail) from None
        raise DeliveryError(detail) from None
    except TimeoutError:
        raise DeliveryError(f"No answer within {timeout:g} s.") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise DeliveryError(f"No answer within {timeout:g} s.") from None
        raise DeliveryError(f"Could not connect: {exc.reason}.") from None
    except destinations.DisallowedDestination as exc:
        raise PermanentDeliveryError(str(exc)) from None
    except http.client.InvalidURL as exc:
        raise PermanentDeliveryError(f"This is not a valid URL: {exc}.") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
