"""The one accessor for the alerts' settings (``settings.ALERTS``)."""

import functools
import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # Sender of alert emails; empty: DEFAULT_FROM_EMAIL.
    "FROM_EMAIL": "",
    # Put before every subject, followed by a space; empty: none.
    "SUBJECT_PREFIX": "[webhooks]",
    "WINDOW_MINUTES": 15,
    "REJECTED_TOKENS_WINDOW_MINUTES": 5,
    "REJECTED_TOKENS_THRESHOLD": 10,
    "WEBHOOK_TIMEOUT_SECONDS": 5.0,
    "MAX_ATTEMPTS": 5,
    "RETRY_SECONDS": 30,
    "RETRY_MAX_SECONDS": 3600,
    "RULE_CACHE_SECONDS": 30,
    # Networks an alert webhook may reach though they are not public (loopback,
    # private, link-local...), e.g. ["10.20.0.0/16"]; empty: public addresses only.
    "WEBHOOK_ALLOWED_NETWORKS": [],
}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AlertSettings:
    from_email: str
    subject_prefix: str
    window: timedelta
    rejected_tokens_window: timedelta
    rejected_tokens_threshold: int
    webhook_timeout_seconds: float
    max_attempts: int
    retry_seconds: int
    retry_max_seconds: int
    rule_cache_seconds: float
    webhook_allowed_networks: tuple[Network, ...]


@functools.cache
def alert_settings() -> AlertSettings:
    """``settings.ALERTS`` over the defaults, built once per process (reset when it changes)."""
    values = {**DEFAULTS, **getattr(settings, "ALERTS", {})}
    prefix = str(values["SUBJECT_PREFIX"]).strip()
    return AlertSettings(
        from_email=str(values["FROM_EMAIL"] or settings.DEFAULT_FROM_EMAIL),
        subject_prefix=f"{prefix} " if prefix else "",
        window=timedelta(minutes=int(values["WINDOW_MINUTES"])),
        rejected_tokens_window=timedelta(
            minutes=int(values["REJECTED_TOKENS_WINDOW_MINUTES"])
        ),
        rejected_tokens_threshold=int(values["REJECTED_TOKENS_THRESHOLD"]),
        webhook_timeout_seconds=float(values["WEBHOOK_TIMEOUT_SECONDS"]),
        max_attempts=int(values["MAX_ATTEMPTS"]),
        retry_seconds=int(values["RETRY_SECONDS"]),
        retry_max_seconds=int(values["RETRY_MAX_SECONDS"]),
        rule_cache_seconds=float(values["RULE_CACHE_SECONDS"]),
        webhook_allowed_networks=parse_networks(values["WEBHOOK_ALLOWED_NETWORKS"]),
    )


def parse_networks(values: Any) -> tuple[Network, ...]:
    if isinstance(values, str):
        values = [v for v in values.replace(",", " ").split() if v]
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"ALERTS['WEBHOOK_ALLOWED_NETWORKS'] holds {value!r}, which is not a "
                "network: give addresses or CIDR networks such as '10.20.0.0/16' "
                "or 'fd00::/8'."
            ) from None
    return tuple(networks)


@receiver(setting_changed)
def _reset_alert_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in ("ALERTS", "DEFAULT_FROM_EMAIL"):
        alert_settings.cache_clear()
