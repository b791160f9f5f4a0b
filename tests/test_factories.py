"""One factory per model, valid by default: a new model without one fails here."""

from __future__ import annotations

import factory
import pytest
from django.apps import apps
from django.db.models import Model

from tests import factories
from tests.alerts import factories as alert_factories

pytestmark = pytest.mark.django_db

#: The apps whose every model needs a factory (bench's are its own business).
APPS = ("submissions", "alerts", "api")


def _factories() -> dict[type[Model], type[factory.django.DjangoModelFactory]]:
    found = {}
    for module in (factories, alert_factories):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, factory.django.DjangoModelFactory)
                and value._meta.model is not None
            ):
                found[value._meta.model] = value
    return found


FACTORIES = _factories()
MODELS = [model for label in APPS for model in apps.get_app_config(label).get_models()]


def test_every_model_has_a_factory():
    missing = [model._meta.label for model in MODELS if model not in FACTORIES]

    assert MODELS
    assert missing == []


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_the_factory_saves_a_valid_row(model):
    made = FACTORIES[model]()

    made.full_clean()
    # The primary key field's value: TokenProxy's ``pk`` property is its user's.
    key = model._meta.pk.value_from_object(made)
    assert model.objects.filter(pk=key).exists()
