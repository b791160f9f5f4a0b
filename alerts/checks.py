from typing import Any

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from alerts.conf import DEFAULTS, parse_networks

POSITIVE = (
    "WINDOW_MINUTES",
    "REJECTED_TOKENS_WINDOW_MINUTES",
    "REJECTED_TOKENS_THRESHOLD",
    "WEBHOOK_TIMEOUT_SECONDS",
    "MAX_ATTEMPTS",
    "RETRY_SECONDS",
    "RETRY_MAX_SECONDS",
)


@register
def check_alert_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    configured = getattr(settings, "ALERTS", {})
    values = {**DEFAULTS, **configured}
    errors = []
    unknown = set(configured) - set(DEFAULTS)
    if unknown:
        errors.append(
            Error(
                f"Unknown ALERTS setting(s): {', '.join(sorted(unknown))}.",
                hint=f"Valid keys: {', '.join(DEFAULTS)}.",
                id="alerts.E001",
            )
        )
    for key in POSITIVE:
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            errors.append(
                Error(
                    f"ALERTS[{key!r}] must be a positive number, not {value!r}.",
                    id="alerts.E002",
                )
            )
    try:
        parse_networks(values["WEBHOOK_ALLOWED_NETWORKS"])
    except ImproperlyConfigured as exc:
        errors.append(Error(str(exc), id="alerts.E003"))
    return errors
