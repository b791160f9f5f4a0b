"""The WSGI application gunicorn and ``runserver`` serve.

Django parses the ``Content-Type`` header before any middleware runs, and
some values make that raise: a NUL or an unknown name in its charset
(``codecs.lookup``), an RFC 2231 ``charset*=`` parameter naming one, a
charset that is not a text encoding (``rot13``) beside a query string. That
would be a 500 with nothing stored, on every path. ``guard_wsgi`` checks the
header first and, when Django could not parse it, hands Django a neutral one
and keeps the original under ``ORIGINAL_CONTENT_TYPE`` in the environ: the
webhook answers 415 quoting it and stores the request like any other (see
``submissions.incoming``).
"""

import io
import os
from collections.abc import Callable
from typing import Any

from django.core.handlers.wsgi import WSGIRequest
from django.core.wsgi import get_wsgi_application
from django.utils.http import parse_header_parameters

from submissions.incoming import ORIGINAL_CONTENT_TYPE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhookproject.settings")

NEUTRAL_CONTENT_TYPE = "application/octet-stream"


def content_type_parses(value: str, query_string: str = "") -> bool:
    """Whether Django's request parsing takes this Content-Type without raising.

    The common case (no charset, or UTF-8) is decided at once; any other
    charset is tried as Django would use it: on a request with the same
    query string.
    """
    try:
        _, params = parse_header_parameters(value)
    except Exception:  # noqa: BLE001 - any failure means Django would fail too
        return False
    charset = params.get("charset")
    if charset is None or charset.strip().lower() in ("utf-8", "utf8"):
        return True
    try:
        request = WSGIRequest(
            {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/",
                "CONTENT_TYPE": value,
                "QUERY_STRING": query_string,
                "wsgi.input": io.BytesIO(),
            }
        )
        request.GET  # noqa: B018 - decoding it is the test
    except Exception:  # noqa: BLE001
        return False
    return True


def guard_wsgi(application: Callable[..., Any]) -> Callable[..., Any]:
    """``application``, safe from a Content-Type Django cannot parse."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        content_type = environ.get("CONTENT_TYPE")
        if content_type and not content_type_parses(
            content_type, environ.get("QUERY_STRING", "")
        ):
            environ[ORIGINAL_CONTENT_TYPE] = content_type
            environ["CONTENT_TYPE"] = NEUTRAL_CONTENT_TYPE
        return application(environ, start_response)

    return guarded


application = guard_wsgi(get_wsgi_application())
