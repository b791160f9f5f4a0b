"""The outside world: an email through Django's email backend, a JSON POST to a webhook URL.

Both raise ``DeliveryError`` (worth another try) or its subclass
``PermanentDeliveryError`` (another try would fail the same way: a refused
URL, a redirect, a 4xx answer other than 408 and 429).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

from django.core.mail import EmailMessage

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


def _answer(raw: bytes) -> str:
    text = raw[: ANSWER_CHARS * 4].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text[:ANSWER_CHARS]


def post_webhook(*, url: str, payload: dict[str, Any], timeout: float) -> int:
    """POST ``payload`` as JSON to ``url``; the 2xx status, or ``DeliveryError``."""
    if not url.lower().startswith(("http://", "https://")):
        raise PermanentDeliveryError("Only http and https webhook URLs are allowed.")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=json.dumps(payload, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
        method="POST",
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout) as response:
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
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
