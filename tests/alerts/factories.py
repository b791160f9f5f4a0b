import factory

from alerts.models import AlertKind, AlertRecipient, AlertRule, Channel


class AlertRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertRule

    name = factory.Sequence(lambda n: f"Rule {n}")
    kind = AlertKind.HANDLER_FAILING


class AlertRecipientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AlertRecipient

    rule = factory.SubFactory(AlertRuleFactory)
    channel = Channel.EMAIL
    target = factory.Sequence(lambda n: f"ops{n}@example.com")
