"""Settings of the dj-stripe peer (``bench/peer.py``), run from its own venv.

A project as ``startproject`` makes it, plus ``djstripe``, with the knobs
that matter for a fair comparison set as our intake runs: DEBUG off,
a psycopg connection pool per process of the same size (health-checked),
the same JSON log format (gunicorn's access log comes from the same
``gunicorn.conf.py``), PostgreSQL from ``DATABASE_URL``.

The Stripe API base points at a closed local port, so a delivery that would
call Stripe fails at once (an error in the run, a traceback on the
WebhookEventTrigger row) instead of reaching the internet.
"""

import environ
import stripe

from webhookproject.logs import json_formatter

env = environ.Env()

SECRET_KEY = "bench-peer-djstripe-not-a-secret"  # noqa: S105 - bench only
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "djstripe",
]
MIDDLEWARE = [  # startproject's
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "bench.peer_djstripe.urls"
WSGI_APPLICATION = "bench.peer_djstripe.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if env.bool("DJANGO_DB_POOL", default=True):  # as ours: a pool per process
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": env.int("DJANGO_DB_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DJANGO_DB_POOL_MAX_SIZE", default=8),
            "timeout": env.float("DJANGO_DB_POOL_TIMEOUT", default=10.0),
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": json_formatter()},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}

# dj-stripe
STRIPE_LIVE_MODE = False
STRIPE_TEST_SECRET_KEY = "sk_test_benchpeerdjstripe0000000000"  # noqa: S105 - fake
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
# dj-stripe's own setting for the API base (it sets stripe.api_base); the
# other bases and the retries are set on the module directly.
STRIPE_API_HOST = "http://127.0.0.1:9"
stripe.api_base = stripe.connect_api_base = stripe.upload_api_base = STRIPE_API_HOST
stripe.meter_events_api_base = STRIPE_API_HOST
stripe.max_network_retries = 0
# djstripe.W002 warns that STRIPE_API_HOST is set outside DEBUG: intended here.
SILENCED_SYSTEM_CHECKS = ["djstripe.W002"]
