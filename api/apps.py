from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Read API"

    def ready(self) -> None:
        # Registers the OpenAPI extensions, among them the webhook endpoint's
        # documentation (submissions.views stays free of schema code).
        from api import schema  # noqa: F401
