from typing import Any

from django.core.checks import Tags, Warning, register

from handlers.registry import registry


@register(Tags.compatibility)
def check_handlers_registered(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    if len(registry):
        return []
    return [
        Warning(
            "No webhook handlers are registered, so every delivery will be stored "
            "as 'unrouted'.",
            hint="Define WebhookHandler subclasses decorated with @register in a "
            "webhook_handlers.py module of an installed app.",
            id="handlers.W001",
        )
    ]
