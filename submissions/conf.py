"""The one accessor for the project's own settings (``settings.WEBHOOKS``)."""

import functools
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")

DEFAULTS = {
    "MAX_BODY_BYTES": 1024 * 1024,
    "REJECTED_BODY_BYTES": 64 * 1024,
    "JWT_ALGORITHMS": ["HS256"],
    "JWT_LEEWAY_SECONDS": 30,
    "JWT_REQUIRED_CLAIMS": [],
    "FOLLOW_UP_RETRY_SECONDS": 30,
    "FOLLOW_UP_RETRY_MAX_SECONDS": 3600,
    "IN_FLIGHT_LEASE_SECONDS": 60,
    # How long a web process keeps an active bot it has read (0: read it on
    # every request). A token the cached secrets refuse reads it again.
    "BOT_CACHE_SECONDS": 5.0,
    "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
    # How long a handler may take before the bot gets the fallback reply.
    "HANDLER_DEADLINE_SECONDS": 8.0,
    "HANDLER_FALLBACK_TEXT": "One moment, please: we are still working on it.",
    # Threads per process that run `def` handlers (so a deadline can pass);
    # 0 runs them in the request's thread, with no deadline (for tests).
    "HANDLER_THREADS": 32,
    # Largest reply a handler may send, as JSON; above it the run fails.
    "MAX_REPLY_BYTES": 256 * 1024,
    # Answers masked for staff without `submissions.view_sensitive_answers`.
    "SENSITIVE_INPUT_TYPES": ["email", "phone", "tel"],
    "SENSITIVE_KEYS": ["email", "phone", "mobile", "phone_number"],
    # Key of the hash an erasure log keeps of the erased id; SECRET_KEY if empty.
    "ERASURE_HASH_KEY": "",
    # Connections a PostgreSQL export reads its chunks on at once; 1: one.
    "EXPORT_DATABASE_WORKERS": 2,
}


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    max_body_bytes: int
    rejected_body_bytes: int
    jwt_algorithms: tuple[str, ...]
    jwt_leeway_seconds: int
    jwt_required_claims: tuple[str, ...]
    public_base_url: str
    follow_up_retry_seconds: int
    follow_up_retry_max_seconds: int
    in_flight_lease_seconds: int
    bot_cache_seconds: float
    handler_deadline_seconds: float
    handler_fallback_text: str
    handler_threads: int
    max_reply_bytes: int
    sensitive_input_types: frozenset[str]
    sensitive_keys: frozenset[str]
    erasure_hash_key: str
    export_database_workers: int


@functools.cache
def webhook_settings() -> WebhookSettings:
    """``settings.WEBHOOKS`` over the defaults, built once per process.

    Several places read it on every delivery, so it is cached; the cache is
    dropped when ``WEBHOOKS`` changes (``override_settings``, the test
    ``settings`` fixture), as DRF does for its own settings.
    """
    values = {**DEFAULTS, **getattr(settings, "WEBHOOKS", {})}
    return WebhookSettings(
        max_body_bytes=int(values["MAX_BODY_BYTES"]),
        rejected_body_bytes=int(values["REJECTED_BODY_BYTES"]),
        # Only HMAC algorithms, whatever is configured: `none` and asymmetric
        # algorithms never verify a token here (the system check says so too).
        jwt_algorithms=tuple(
            a for a in values["JWT_ALGORITHMS"] if a in HMAC_ALGORITHMS
        ),
        jwt_leeway_seconds=int(values["JWT_LEEWAY_SECONDS"]),
        jwt_required_claims=tuple(values["JWT_REQUIRED_CLAIMS"]),
        public_base_url=str(values["PUBLIC_BASE_URL"]).rstrip("/"),
        follow_up_retry_seconds=int(values["FOLLOW_UP_RETRY_SECONDS"]),
        follow_up_retry_max_seconds=int(values["FOLLOW_UP_RETRY_MAX_SECONDS"]),
        in_flight_lease_seconds=int(values["IN_FLIGHT_LEASE_SECONDS"]),
        bot_cache_seconds=max(float(values["BOT_CACHE_SECONDS"]), 0.0),
        handler_deadline_seconds=float(values["HANDLER_DEADLINE_SECONDS"]),
        handler_fallback_text=str(values["HANDLER_FALLBACK_TEXT"]),
        handler_threads=max(int(values["HANDLER_THREADS"]), 0),
        max_reply_bytes=max(int(values["MAX_REPLY_BYTES"]), 1),
        sensitive_input_types=frozenset(
            t.lower() for t in values["SENSITIVE_INPUT_TYPES"]
        ),
        sensitive_keys=frozenset(k.lower() for k in values["SENSITIVE_KEYS"]),
        erasure_hash_key=str(values["ERASURE_HASH_KEY"] or settings.SECRET_KEY),
        export_database_workers=max(int(values["EXPORT_DATABASE_WORKERS"]), 1),
    )


@receiver(setting_changed)
def _reset_webhook_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == "WEBHOOKS":
        webhook_settings.cache_clear()
