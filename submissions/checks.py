from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register

from submissions.conf import DEFAULTS, HMAC_ALGORITHMS


@register(Tags.security)
def check_webhook_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    values = {**DEFAULTS, **getattr(settings, "WEBHOOKS", {})}
    errors = []
    unknown = set(getattr(settings, "WEBHOOKS", {})) - set(DEFAULTS)
    if unknown:
        errors.append(
            Error(
                f"Unknown WEBHOOKS setting(s): {', '.join(sorted(unknown))}.",
                hint=f"Valid keys: {', '.join(DEFAULTS)}.",
                id="submissions.E001",
            )
        )
    algorithms = list(values["JWT_ALGORITHMS"])
    bad = [a for a in algorithms if a not in HMAC_ALGORITHMS]
    if bad or not algorithms:
        errors.append(
            Error(
                f"WEBHOOKS['JWT_ALGORITHMS'] = {algorithms!r}: only {', '.join(HMAC_ALGORITHMS)} "
                "are accepted (tokens are signed with the bot's shared secret; 'none' and "
                "asymmetric algorithms are never allowed).",
                id="submissions.E002",
            )
        )
    for key in ("MAX_BODY_BYTES", "REJECTED_BODY_BYTES", "MAX_REPLY_BYTES"):
        if not isinstance(values[key], int) or values[key] <= 0:
            errors.append(
                Error(
                    f"WEBHOOKS[{key!r}] must be a positive integer.",
                    id="submissions.E003",
                )
            )
    return errors
