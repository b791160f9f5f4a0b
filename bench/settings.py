"""Settings for the bench scripts: production settings, plain HTTP on loopback.

``DJANGO_SETTINGS_MODULE=bench.settings`` adds the ``bench`` app (so its
``webhook_handlers.py`` registers ``soak-ok`` and ``soak-fail``) and serves
``bench.urls``. Nothing in production imports this module.
"""

from webhookproject.settings import *  # noqa: F403
from webhookproject.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
ROOT_URLCONF = "bench.urls"

DEBUG = False
# The scripts talk plain HTTP to 127.0.0.1: no redirect to HTTPS.
SECURE_SSL_REDIRECT = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
