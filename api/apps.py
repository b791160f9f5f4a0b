from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Read API"

    def ready(self) -> None:
        # The read API's shared OpenAPI pieces.
        from api import schema  # noqa: F401
