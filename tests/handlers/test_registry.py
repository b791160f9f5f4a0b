import pytest
from django.core.checks import run_checks
from django.utils.module_loading import autodiscover_modules

from handlers import (
    HandlerAlreadyRegistered,
    HandlerNotFound,
    HandlerRegistry,
    InvalidHandler,
    InvalidHandlerName,
    WebhookHandler,
)


def make_handler(name, *, qualname="Handler", module=__name__):
    cls = type(
        qualname, (WebhookHandler,), {"name": name, "handle": lambda self, r, b: None}
    )
    cls.__module__ = module
    cls.__qualname__ = qualname
    return cls


@pytest.fixture
def fresh():
    return HandlerRegistry()


@pytest.mark.parametrize(
    "name", ["division-handler", "save_form", "v1.submit", "A", "x" * 255]
)
def test_register_accepts_logicdialog_names_and_returns_the_class(fresh, name):
    cls = make_handler(name)
    assert fresh.register(cls) is cls
    assert fresh.get(name) is cls


@pytest.mark.parametrize(
    "name", ["", "has space", "slash/name", "ünïcode", "x" * 256, None, 42]
)
def test_register_rejects_invalid_names(fresh, name):
    with pytest.raises(InvalidHandlerName, match="invalid handler name"):
        fresh.register(make_handler(name))


def test_name_is_never_derived_from_the_class(fresh):
    class NoName(WebhookHandler):
        def handle(self, request, response):
            pass

    with pytest.raises(InvalidHandlerName, match="NoName"):
        fresh.register(NoName)


def test_name_must_be_declared_on_the_class_itself(fresh):
    parent = make_handler("parent-name", qualname="Parent")

    class Child(parent):
        pass

    with pytest.raises(InvalidHandlerName):
        fresh.register(Child)


def test_register_rejects_non_handlers_and_missing_handle(fresh):
    with pytest.raises(InvalidHandler, match="not a subclass of WebhookHandler"):
        fresh.register(object)

    class Lazy(WebhookHandler):
        name = "lazy"

    with pytest.raises(InvalidHandler, match="must override handle"):
        fresh.register(Lazy)


def test_two_different_classes_under_one_name_is_an_error_naming_both(fresh):
    fresh.register(make_handler("dup", qualname="First"))
    with pytest.raises(HandlerAlreadyRegistered, match=r"tests\..*First.*Second"):
        fresh.register(make_handler("dup", qualname="Second"))


def test_registering_the_same_class_again_is_harmless(fresh):
    first = make_handler("same")
    fresh.register(first)
    reloaded = make_handler("same")  # same module and qualname, as after a reload
    assert fresh.register(reloaded) is reloaded
    assert fresh.names() == ["same"]


def test_unknown_name_names_the_key_and_suggests_close_matches(fresh):
    fresh.register(make_handler("division-handler"))
    fresh.register(make_handler("save-form", qualname="Save"))
    with pytest.raises(HandlerNotFound) as info:
        fresh.get("divison-handler")
    error = info.value
    assert isinstance(error, LookupError)
    assert error.suggestions == ["division-handler"]
    assert str(error).startswith("No webhook handler named 'divison-handler'.")
    assert "Did you mean 'division-handler'?" in str(error)
    assert "save-form" in str(error)


def test_unknown_name_in_an_empty_registry(fresh):
    with pytest.raises(HandlerNotFound, match="No handlers are registered"):
        fresh.get("anything")


def test_unregister(fresh):
    fresh.register(make_handler("gone"))
    fresh.unregister("gone")
    assert "gone" not in fresh
    with pytest.raises(HandlerNotFound):
        fresh.unregister("gone")


def test_autodiscovery_registered_the_example_handlers():
    from handlers import registry

    assert {"division-handler", "save-form"} <= set(registry.names())


def test_failed_autodiscovery_import_restores_the_registry(
    handler_registry, monkeypatch
):
    before = handler_registry.names()

    def broken_import(module_name):
        if module_name.endswith("webhook_handlers"):
            handler_registry.register(make_handler("half-imported"))
            raise ImportError("boom")
        return __import__(module_name)

    monkeypatch.setattr("django.utils.module_loading.import_module", broken_import)
    with pytest.raises(ImportError):
        autodiscover_modules("webhook_handlers", register_to=handler_registry)
    assert handler_registry.names() == before


def test_system_check_warns_when_no_handler_is_registered(handler_registry):
    handler_registry._registry.clear()
    ids = [message.id for message in run_checks()]
    assert "handlers.W001" in ids


def test_system_check_is_quiet_with_handlers():
    assert "handlers.W001" not in [message.id for message in run_checks()]
