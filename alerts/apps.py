from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from alerts import (
            checks,  # noqa: F401  (registers the system checks)
            receivers,  # noqa: F401  (connects the signal receivers)
        )
