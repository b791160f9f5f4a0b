from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Metrics and readiness"

    def ready(self) -> None:
        from observability import receivers  # noqa: F401 - connects the receivers
