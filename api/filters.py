"""The admin's filters as query parameters: bot, handler, status, time, ids.

Every value is validated: a bad one is a 400 naming the parameter and what
is valid, never a database error. ``since``/``until`` read as the
``export_submissions`` command's ``--since``/``--until`` do, so the API's CSV
and the command's agree for the same arguments.
"""

from datetime import datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from drf_spectacular.utils import extend_schema_field

from submissions.models import Bot, FormSubmission, WebhookEvent
from submissions.moments import parse_moment


class MomentField(forms.Field):
    """A date (a whole day) or an ISO 8601 date-time, as an aware UTC datetime.

    ``end`` makes a bare date mean "up to the end of that day". A date-time
    without an offset is in the site's time zone (``DJANGO_TIME_ZONE``).
    """

    default_error_messages = {
        "invalid": (
            "Enter a date like 2025-01-31 or a date-time like 2025-01-31T14:30:00Z "
            "(ISO 8601)."
        ),
    }

    def __init__(self, *, end: bool = False, **kwargs: Any) -> None:
        self.end = end
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        try:
            return parse_moment(str(value), end=self.end)
        except ValueError:
            raise ValidationError(
                self.error_messages["invalid"], code="invalid"
            ) from None


class MomentFilter(django_filters.Filter):
    field_class = MomentField


# The schema's descriptions: a custom filter's schema comes from its class.
@extend_schema_field(
    {
        "type": "string",
        "description": (
            "Received on or after this date (`2025-01-31`) or ISO 8601 date-time "
            "(`2025-01-31T14:30:00Z`; without an offset, the site's time zone)."
        ),
    }
)
class SinceFilter(MomentFilter):
    pass


@extend_schema_field(
    {
        "type": "string",
        "description": (
            "Received on or before this date (`2025-01-31`, the whole day), or "
            "strictly before this ISO 8601 date-time."
        ),
    }
)
class UntilFilter(MomentFilter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(lookup_expr="lt", end=True, **kwargs)


class BotSlugField(forms.ModelChoiceField):
    """A bot by slug; anything but a slug is refused before the database sees it."""

    default_error_messages = {
        "invalid_choice": "No bot has the slug “%(value)s”.",
    }

    def to_python(self, value: Any) -> Bot | None:
        if value not in self.empty_values:
            validate_slug(value)
        return super().to_python(value)


class BotFilter(django_filters.ModelChoiceFilter):
    field_class = BotSlugField


def bot_filter() -> BotFilter:
    return BotFilter(
        field_name="bot",
        to_field_name="slug",
        queryset=Bot.objects.all(),
        label="Only this bot's records (its slug).",
    )


class SubmissionFilter(django_filters.FilterSet):
    bot = bot_filter()
    handler = django_filters.CharFilter(
        field_name="handler_name", label="Only this handler's (form's) submissions."
    )
    since = SinceFilter(field_name="submitted_at", lookup_expr="gte")
    until = UntilFilter(field_name="submitted_at")
    conversation_id = django_filters.CharFilter(label="This conversation only.")
    user_id = django_filters.CharFilter(label="This user only.")

    class Meta:
        model = FormSubmission
        fields = ["bot", "handler", "since", "until", "conversation_id", "user_id"]


class WebhookEventFilter(django_filters.FilterSet):
    bot = bot_filter()
    handler = django_filters.CharFilter(
        field_name="handler_name", label="Only events for this handler name."
    )
    status = django_filters.MultipleChoiceFilter(
        choices=WebhookEvent.Status.choices,
        label="Only events with this status; repeat for several.",
    )
    since = SinceFilter(field_name="received_at", lookup_expr="gte")
    until = UntilFilter(field_name="received_at")
    conversation_id = django_filters.CharFilter(label="This conversation only.")
    user_id = django_filters.CharFilter(label="This user only.")
    delivery_id = django_filters.CharFilter(label="This delivery id only.")

    class Meta:
        model = WebhookEvent
        fields = [
            "bot",
            "handler",
            "status",
            "since",
            "until",
            "conversation_id",
            "user_id",
            "delivery_id",
        ]
