from django.apps import AppConfig


class ExampleHandlersConfig(AppConfig):
    name = "example_handlers"
    verbose_name = "Example webhook handlers"
