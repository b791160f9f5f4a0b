from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    name = "submissions"
    verbose_name = "Webhook submissions"

    def ready(self) -> None:
        from submissions import (
            checks,  # noqa: F401  (registers the system checks)
            openapi,  # noqa: F401  (documents the webhook)
            receivers,  # noqa: F401  (drops cached bots when one changes)
        )
