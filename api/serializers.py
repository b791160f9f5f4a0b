"""What the read API shows. Bots appear by slug only: secrets never leave the admin.

Stored headers already have their credentials redacted at intake
(``submissions.redaction.redact_headers``); they are redacted again here, so a
row stored before a rule was added never shows a credential.
"""

import base64
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from submissions.masking import (
    can_see_sensitive,
    event_redactor,
    is_sensitive,
    mask_value,
)
from submissions.models import FormAnswer, FormSubmission, WebhookEvent
from submissions.redaction import redact_headers
from submissions.values import value_as_text


def headers_for_display(headers: Any) -> dict[str, str]:
    if not isinstance(headers, dict):
        return {}
    return redact_headers({str(name): str(value) for name, value in headers.items()})


class BotSlugField(serializers.SlugRelatedField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="slug", read_only=True, **kwargs)


class FormAnswerSerializer(serializers.ModelSerializer):
    """An answer; a sensitive one masked unless the user may see it."""

    class Meta:
        model = FormAnswer
        fields = ["position", "key", "label", "input_type", "value", "value_text"]

    def to_representation(self, instance: FormAnswer) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if is_sensitive(
            key=instance.key, input_type=instance.input_type
        ) and not can_see_sensitive(user):
            data["value"] = mask_value(instance.value)
            data["value_text"] = value_as_text(data["value"])
        return data


class FormSubmissionSerializer(serializers.ModelSerializer):
    bot = BotSlugField(help_text="The bot's slug.")
    answers = FormAnswerSerializer(many=True, read_only=True)

    class Meta:
        model = FormSubmission
        fields = [
            "id",
            "event",
            "bot",
            "handler_name",
            "conversation_id",
            "user_id",
            "submitted_at",
            "answers",
        ]
        read_only_fields = fields


class WebhookEventSerializer(serializers.ModelSerializer):
    bot = BotSlugField(help_text="The bot's slug.")
    headers = serializers.SerializerMethodField(
        help_text="Request headers; credentials are always redacted."
    )
    submission = serializers.IntegerField(
        source="submission_id",
        read_only=True,
        allow_null=True,
        help_text="The form submission stored from this event, if any.",
    )

    class Meta:
        model = WebhookEvent
        fields = [
            "id",
            "bot",
            "received_at",
            "handler_name",
            "status",
            "error_code",
            "error_detail",
            "traceback",
            "remote_addr",
            "headers",
            "body_size",
            "body_sha256",
            "body_truncated",
            "payload",
            "delivery_id",
            "duplicate_of",
            "conversation_id",
            "user_id",
            "response_status",
            "response_body",
            "duration_ms",
            "submission",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
    def get_headers(self, event: WebhookEvent) -> dict[str, str]:
        return headers_for_display(event.headers)

    def masked(self) -> bool:
        request = self.context.get("request")
        return not can_see_sensitive(getattr(request, "user", None))

    def to_representation(self, instance: WebhookEvent) -> dict[str, Any]:
        """Sensitive answers masked wherever the event repeats them, for a user
        who sees them masked (``submissions.masking.event_redactor``)."""
        data = super().to_representation(instance)
        if self.masked():
            redactor = event_redactor(instance)
            for name in ("payload", "response_body"):
                data[name] = redactor.json(data[name])
            for name in ("error_detail", "traceback"):
                data[name] = redactor.text(data[name])
        return data


class WebhookEventDetailSerializer(WebhookEventSerializer):
    raw_body = serializers.SerializerMethodField(
        help_text="The body as received, base64-encoded (for a rejected event, "
        "its first bytes only: see body_truncated). Null for a user without "
        "`submissions.view_sensitive_answers`, unless the body parsed into no "
        "sensitive answer."
    )

    class Meta(WebhookEventSerializer.Meta):
        fields = [*WebhookEventSerializer.Meta.fields, "raw_body"]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "format": "byte", "nullable": True})
    def get_raw_body(self, event: WebhookEvent) -> str | None:
        raw = bytes(event.raw_body or b"")
        if (
            raw
            and self.masked()
            and not (event.payload and event_redactor(event).is_empty)
        ):
            return None
        return base64.b64encode(raw).decode("ascii")
