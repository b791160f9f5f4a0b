import factory
from django.utils import timezone

from alerts.models import (
    AlertKind,
    AlertRecipient,
    AlertRule,
    AlertState,
    Channel,
    SentAlert,
)


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


class AlertStateFactory(factory.django.DjangoModelFactory):
    """A rule's window for one key, just opened by an alert."""

    class Meta:
        model = AlertState

    rule = factory.SubFactory(AlertRuleFactory)
    key = factory.Sequence(lambda n: f"bot-{n}:save-form")
    window_started_at = factory.LazyFunction(timezone.now)
    last_sent_at = factory.SelfAttribute("window_started_at")
    last_incident_at = factory.SelfAttribute("window_started_at")


class SentAlertFactory(factory.django.DjangoModelFactory):
    """An email alert, queued, to a rule's recipient."""

    class Meta:
        model = SentAlert

    recipient = factory.SubFactory(AlertRecipientFactory)
    rule = factory.SelfAttribute("recipient.rule")
    kind = factory.SelfAttribute("rule.kind")
    channel = factory.SelfAttribute("recipient.channel")
    recipient_shown = factory.SelfAttribute("recipient.target")
    key = factory.Sequence(lambda n: f"bot-{n}:save-form")
    subject = "save-form is failing"
    body = "3 runs failed in the last 15 minutes."
    url = "https://hooks.example.com/admin/submissions/handlerrun/?outcome=failed"
    first_incident_at = factory.LazyFunction(timezone.now)
    last_incident_at = factory.SelfAttribute("first_incident_at")
