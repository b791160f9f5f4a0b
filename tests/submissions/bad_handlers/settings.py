"""Production settings plus the ``bad_handlers`` app, for a real server under test.

``DJANGO_SETTINGS_MODULE=tests.submissions.bad_handlers.settings``; nothing
outside the tests imports it.
"""

from webhookproject.settings import *  # noqa: F403
from webhookproject.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.submissions.bad_handlers"]
