from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class HandlersConfig(AppConfig):
    name = "handlers"
    verbose_name = "Webhook handlers"

    def ready(self) -> None:
        from handlers import checks  # noqa: F401  (registers the system checks)
        from handlers.registry import registry

        autodiscover_modules("webhook_handlers", register_to=registry)
