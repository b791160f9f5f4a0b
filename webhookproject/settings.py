"""Settings for the logicdialog webhook receiver.

Every value that differs between machines comes from the environment (or a
`.env` file beside manage.py), read here and nowhere else. The defaults suit
local development only; docs/settings.md lists every variable and
docs/deployment.md the production environment.
"""

from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from alerts.conf import DEFAULTS as ALERT_DEFAULTS
from submissions.conf import DEFAULTS as WEBHOOK_DEFAULTS
from webhookproject.logs import LOG_FORMATS, json_formatter

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# The fallback key is for local development; `check --deploy` flags it.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="django-insecure-local-development-only")
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"]
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django.contrib.admin, with the project's site (the console's pages in it).
    "submissions.sites.WebhooksAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles: its runserver reads chunked bodies (submissions/devserver.py).
    "submissions",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_tasks_db",
    "handlers",
    "example_handlers",
    # After rest_framework.authtoken: its admin replaces the token admin.
    "api",
    "alerts",
    # /metrics and /readyz (docs/deployment.md "Metrics", "Readiness").
    "observability",
]

MIDDLEWARE = [
    # First: answers /healthz before host checks and the HTTPS redirect.
    "webhookproject.health.HealthCheckMiddleware",
    # /metrics (with its token) and /readyz, likewise: probes and scrapers
    # reach the backend by its own address over plain HTTP.
    "observability.middleware.ObservabilityMiddleware",
    # Next: a bad Host, a NUL in a query string, HTML error pages under
    # /api/ and /webhooks/ (webhookproject/edge.py).
    "webhookproject.edge.EdgeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The admin's static files, from the web process itself (no proxy needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webhookproject.urls"
WSGI_APPLICATION = "webhookproject.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "webhookproject" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite file beside manage.py by default; PostgreSQL (or any backend) through
# DATABASE_URL, e.g. postgres://user:password@host:5432/name.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# Reuse each connection for a minute (health-checked before reuse): opening a
# PostgreSQL connection costs more than a whole delivery (see BENCHMARKS.md).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool(
    "DJANGO_CONN_HEALTH_CHECKS", default=True
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DJANGO_DB_POOL", default=True
):
    # A pool of connections per process (psycopg_pool), shared by its threads:
    # connections are bounded by workers x DJANGO_DB_POOL_MAX_SIZE, whatever
    # the threads (docs/deployment.md "Connections"). Django takes a
    # connection from the pool per request and gives it back at its end, and
    # earlier while a handler waits (submissions.dispatch).
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them instead
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DJANGO_DB_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DJANGO_DB_POOL_MAX_SIZE", default=8),
        "timeout": env.float("DJANGO_DB_POOL_TIMEOUT", default=10.0),
    }
# Behind a transaction-mode pooler (PgBouncer, docs/deployment.md "PgBouncer")
# a session lasts one transaction: no server-side cursors (`.iterator()` would
# open a WITH HOLD cursor that the next statement may not find), and no
# prepared statements (pgbouncer before 1.21 cannot track them; Django's own
# default, made explicit here so an OPTIONS override cannot turn them on).
DB_TRANSACTION_POOLER = env.bool("DJANGO_DB_TRANSACTION_POOLER", default=False)
# A streaming replica for staff reads (docs/deployment.md "Read replica"):
# admin and API GETs read from it unless the caller wrote within
# DATABASE_REPLICA_PIN_SECONDS, a transaction is open, or it is unreachable or
# more than DATABASE_REPLICA_MAX_LAG_SECONDS behind (checked at most every
# DATABASE_REPLICA_CHECK_SECONDS per process). Unset: no replica, no router.
DATABASE_REPLICA_PIN_SECONDS = env.int("DATABASE_REPLICA_PIN_SECONDS", default=30)
DATABASE_REPLICA_MAX_LAG_SECONDS = env.float(
    "DATABASE_REPLICA_MAX_LAG_SECONDS", default=10.0
)
DATABASE_REPLICA_CHECK_SECONDS = env.float(
    "DATABASE_REPLICA_CHECK_SECONDS", default=5.0
)
if env("DATABASE_REPLICA_URL", default=""):
    # Few staff connections: persistent ones per thread, no pool (a pool
    # would wait its full timeout for a replica that is down).
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
    DATABASES["replica"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    DATABASE_ROUTERS = ["webhookproject.replica.ReplicaRouter"]
    MIDDLEWARE.insert(
        MIDDLEWARE.index("webhookproject.edge.EdgeMiddleware") + 1,
        "webhookproject.replica.ReplicaReadsMiddleware",
    )
for _database in DATABASES.values() if DB_TRANSACTION_POOLER else ():
    _database["DISABLE_SERVER_SIDE_CURSORS"] = True
    if _database["ENGINE"] == "django.db.backends.postgresql":
        _database.setdefault("OPTIONS", {})["prepare_threshold"] = None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several deliveries at once on the embedded database: readers never block
    # the writer (WAL), a writer waits its turn for up to 20 s instead of
    # failing with "database is locked", and a transaction takes the write
    # lock when it begins, so two never deadlock upgrading read locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("DJANGO_SQLITE_TIMEOUT", default=20),
        }
    )
    # The console's covering indexes (INCLUDE) are PostgreSQL's; SQLite keeps
    # their key columns, as intended (submissions/migrations/0010).
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# `manage.py collectstatic` fills this; whitenoise serves it with far-future
# cache headers, under hashed names. Every web process needs its own copy
# (collectstatic at build/deploy time), nothing is written at run time.
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env(
            "DJANGO_STATICFILES_STORAGE",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage",
        ),
    },
}

# HTTPS hardening: on unless DEBUG. Behind a proxy that terminates TLS, set
# DJANGO_SECURE_PROXY_SSL_HEADER=true so Django trusts X-Forwarded-Proto.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int(
    "DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool(
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG
)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Defaults for the read API (api/). The webhook view sets its own empty
# authentication and permission classes: its bearer JWT is checked in intake.
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    # Token first: its `WWW-Authenticate: Token` makes anonymous requests 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.ViewModelPermissions"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# OpenAPI 3 schema at /api/schema/, Swagger UI at /api/docs/ (api/schema.py
# documents the webhook endpoint too). The UI's files come from
# drf-spectacular-sidecar: no CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "logicdialog webhooks",
    "DESCRIPTION": (
        "The webhook endpoint logicdialog bots post to, and a read-only API over "
        "what was received: webhook events and form submissions with their "
        "answers. The read API takes a token (`Authorization: Token <key>`) or "
        "an admin session."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["submissions.openapi.without_url_aliases"],
    "ENUM_NAME_OVERRIDES": {
        "WebhookEventStatus": "submissions.models.WebhookEvent.Status"
    },
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "webhookJWT": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": (
                    "A JWT signed (HS256 by default) with the bot's secret; "
                    "see docs/contract.md."
                ),
            }
        }
    },
}

# Background work (handlers' follow_up). The database backend needs no extra
# server: run `manage.py db_worker`. See docs/background-work.md to switch to
# a broker-backed backend.
TASKS = {
    "default": {
        "BACKEND": env("TASKS_BACKEND", default="django_tasks_db.DatabaseBackend"),
    },
}


# The project's own knobs, read through submissions.conf.webhook_settings();
# their defaults are defined once, in submissions.conf.DEFAULTS.
def _webhook(cast: Any, name: str) -> Any:
    """``WEBHOOKS[name]`` from ``WEBHOOK_<name>``, or its one default."""
    return cast(f"WEBHOOK_{name}", default=WEBHOOK_DEFAULTS[name])


WEBHOOKS = {
    # Largest request body accepted, in bytes; larger gets 413 unread.
    "MAX_BODY_BYTES": _webhook(env.int, "MAX_BODY_BYTES"),
    # How much of a rejected request's body is kept for audit.
    "REJECTED_BODY_BYTES": _webhook(env.int, "REJECTED_BODY_BYTES"),
    # HMAC algorithms a token may use. Only HS256/HS384/HS512 are allowed here.
    "JWT_ALGORITHMS": _webhook(env.list, "JWT_ALGORITHMS"),
    # Clock skew tolerated on exp/nbf/iat, in seconds.
    "JWT_LEEWAY_SECONDS": _webhook(env.int, "JWT_LEEWAY_SECONDS"),
    # Claims every token must carry, e.g. ["exp"]. logicdialog publishes none.
    "JWT_REQUIRED_CLAIMS": _webhook(env.list, "JWT_REQUIRED_CLAIMS"),
    # Follow-up retries: first delay, doubled each try, capped.
    "FOLLOW_UP_RETRY_SECONDS": _webhook(env.int, "FOLLOW_UP_RETRY_SECONDS"),
    "FOLLOW_UP_RETRY_MAX_SECONDS": _webhook(env.int, "FOLLOW_UP_RETRY_MAX_SECONDS"),
    # After this long with no reply, a stored delivery's process is taken as
    # dead and the next copy of it runs it. Keep it above the server's request
    # timeout (gunicorn.conf.py: 30 s).
    "IN_FLIGHT_LEASE_SECONDS": _webhook(env.int, "IN_FLIGHT_LEASE_SECONDS"),
    # How long a web process keeps a bot it has read: a bot deactivated in
    # another process is refused within this time (a rotated secret at once).
    "BOT_CACHE_SECONDS": _webhook(env.float, "BOT_CACHE_SECONDS"),
    # Answers masked for staff without the view_sensitive_answers permission:
    # by question type and by question key (docs/personal-data.md).
    "SENSITIVE_INPUT_TYPES": _webhook(env.list, "SENSITIVE_INPUT_TYPES"),
    "SENSITIVE_KEYS": _webhook(env.list, "SENSITIVE_KEYS"),
    # Key of the erasure log's hash of an erased id (SECRET_KEY when empty).
    "ERASURE_HASH_KEY": _webhook(env, "ERASURE_HASH_KEY"),
    # A handler still running after this many seconds is given up on: the bot
    # gets the fallback text (docs/handlers.md "Handlers that wait").
    "HANDLER_DEADLINE_SECONDS": _webhook(env.float, "HANDLER_DEADLINE_SECONDS"),
    "HANDLER_FALLBACK_TEXT": _webhook(env, "HANDLER_FALLBACK_TEXT"),
    # Threads per process running `def` handlers, so a deadline can pass.
    "HANDLER_THREADS": _webhook(env.int, "HANDLER_THREADS"),
    # Largest reply (as JSON) a handler may send; above it the run fails.
    "MAX_REPLY_BYTES": _webhook(env.int, "MAX_REPLY_BYTES"),
    # Base URL that `send_webhook` posts to and `setup_demo` prints.
    "PUBLIC_BASE_URL": _webhook(env, "PUBLIC_BASE_URL"),
    # Connections a PostgreSQL export reads its chunks on at once (docs/export.md).
    "EXPORT_DATABASE_WORKERS": _webhook(env.int, "EXPORT_DATABASE_WORKERS"),
}

# Email (alerts): one URL, e.g. smtp+tls://user:password@smtp.example.com:587,
# smtp+ssl://...:465, or consolemail:// (the default: printed to stderr).
# Parts the URL leaves out keep Django's defaults; no EMAIL_CONFIG setting is left
# behind to show the password.
_email = env.email_url("EMAIL_URL", default="consolemail://")
vars().update({k: v for k, v in _email.items() if v is not None})
# A stuck mail server must not hold the task worker for ever.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="webhooks@localhost")

# Alerts (the alerts app), read through alerts.conf.alert_settings(); their
# defaults are defined once, in alerts.conf.DEFAULTS. See docs/alerts.md.
ALERTS = {
    # Sender of alert emails; empty: DEFAULT_FROM_EMAIL.
    "FROM_EMAIL": env("ALERTS_FROM_EMAIL", default=ALERT_DEFAULTS["FROM_EMAIL"]),
    "SUBJECT_PREFIX": env(
        "ALERTS_SUBJECT_PREFIX", default=ALERT_DEFAULTS["SUBJECT_PREFIX"]
    ),
    # At most one alert per rule, bot and handler in this window, unless a
    # rule sets its own; rejected tokens have their own window and threshold.
    "WINDOW_MINUTES": env.int(
        "ALERTS_WINDOW_MINUTES", default=ALERT_DEFAULTS["WINDOW_MINUTES"]
    ),
    "REJECTED_TOKENS_WINDOW_MINUTES": env.int(
        "ALERTS_REJECTED_TOKENS_WINDOW_MINUTES",
        default=ALERT_DEFAULTS["REJECTED_TOKENS_WINDOW_MINUTES"],
    ),
    "REJECTED_TOKENS_THRESHOLD": env.int(
        "ALERTS_REJECTED_TOKENS_THRESHOLD",
        default=ALERT_DEFAULTS["REJECTED_TOKENS_THRESHOLD"],
    ),
    # An outgoing webhook's answer is awaited this long, in seconds.
    "WEBHOOK_TIMEOUT_SECONDS": env.float(
        "ALERTS_WEBHOOK_TIMEOUT_SECONDS",
        default=ALERT_DEFAULTS["WEBHOOK_TIMEOUT_SECONDS"],
    ),
    # Tries per alert and recipient; the delay starts at RETRY_SECONDS,
    # doubles each try, and is capped.
    "MAX_ATTEMPTS": env.int(
        "ALERTS_MAX_ATTEMPTS", default=ALERT_DEFAULTS["MAX_ATTEMPTS"]
    ),
    "RETRY_SECONDS": env.int(
        "ALERTS_RETRY_SECONDS", default=ALERT_DEFAULTS["RETRY_SECONDS"]
    ),
    "RETRY_MAX_SECONDS": env.int(
        "ALERTS_RETRY_MAX_SECONDS", default=ALERT_DEFAULTS["RETRY_MAX_SECONDS"]
    ),
    # How long a web process keeps its copy of the enabled rules.
    "RULE_CACHE_SECONDS": env.int(
        "ALERTS_RULE_CACHE_SECONDS", default=ALERT_DEFAULTS["RULE_CACHE_SECONDS"]
    ),
    # Non-public networks alert webhooks may reach (comma-separated CIDR);
    # empty: only public addresses (no loopback, private or link-local).
    "WEBHOOK_ALLOWED_NETWORKS": env.list(
        "ALERTS_WEBHOOK_ALLOWED_NETWORKS",
        default=ALERT_DEFAULTS["WEBHOOK_ALLOWED_NETWORKS"],
    ),
}

# Prometheus metrics at /metrics, served only to a caller that sends
# `Authorization: Bearer <DJANGO_METRICS_TOKEN>`; without a token configured
# /metrics answers 404 (docs/deployment.md "Metrics"). Across gunicorn's
# workers the series live in PROMETHEUS_MULTIPROC_DIR, read by
# prometheus_client itself (gunicorn.conf.py empties it at start).
METRICS_TOKEN = env("DJANGO_METRICS_TOKEN", default="")
# /readyz?task=1 answers 503 once its probe task has waited this long for a
# task worker (docs/deployment.md "Readiness").
READYZ_TASK_LAG_SECONDS = env.int("DJANGO_READYZ_TASK_LAG_SECONDS", default=60)

# Logs go to stderr, one JSON object per line unless DJANGO_LOG_FORMAT=plain
# (the default when DEBUG). Extra attributes on a record (the intake log's
# event_id, bot, handler, status, response_status, duration_ms) become keys.
LOG_FORMAT = env("DJANGO_LOG_FORMAT", default="plain" if DEBUG else "json")
if LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(
        f"DJANGO_LOG_FORMAT must be 'json' or 'plain', not {LOG_FORMAT!r}."
    )
LOG_LEVEL = env("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "webhookproject.logs.PlainFormatter",
            "format": "{asctime} {levelname} {name} {message}",
            "style": "{",
        },
        "json": json_formatter(),
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django's own loggers (its debug-only console, runserver's access log)
    # go through the same handler and formatter: one line per record, control
    # characters in a request line escaped.
    "loggers": {
        name: {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False}
        for name in ("django", "django.server")
    },
}
