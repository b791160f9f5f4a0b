"""The WSGI application gunicorn and ``runserver`` serve.

Django parses the ``Content-Type`` header before any middleware runs, and a
NUL in its charset makes that raise (``codecs.lookup``): a 500 with nothing
stored. ``guard_wsgi`` replaces the NUL first, so the webhook answers 415
and keeps the request like any other (see ``webhookproject.edge``).
"""

import os
from collections.abc import Callable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhookproject.settings")


def guard_wsgi(application: Callable[..., Any]) -> Callable[..., Any]:
    """``application``, safe from what Django cannot parse in an environ."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        content_type = environ.get("CONTENT_TYPE")
        if content_type and "\x00" in content_type:
            environ["CONTENT_TYPE"] = content_type.replace("\x00", "\ufffd")
        return application(environ, start_response)

    return guarded


application = guard_wsgi(get_wsgi_application())
