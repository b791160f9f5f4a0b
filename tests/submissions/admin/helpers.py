"""What the admin tests share: the pages' URLs and small readers of responses."""

import csv
import io

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from submissions.exports import BOM
from submissions.models import FormSubmission, WebhookEvent

BOTS = reverse("admin:submissions_bot_changelist")
EVENTS = reverse("admin:submissions_webhookevent_changelist")
SUBMISSIONS = reverse("admin:submissions_formsubmission_changelist")
EXPORT = reverse("admin:submissions_formsubmission_export")
EXPORT_EXCEL = reverse("admin:submissions_formsubmission_export_excel")
EXPORT_XLSX = reverse("admin:submissions_formsubmission_export_xlsx")


def event_url(event: WebhookEvent) -> str:
    return reverse("admin:submissions_webhookevent_change", args=[event.pk])


def submission_url(submission: FormSubmission) -> str:
    return reverse("admin:submissions_formsubmission_change", args=[submission.pk])


def streamed(response) -> str:
    assert response.streaming, "expected a streamed response"
    return b"".join(response.streaming_content).decode("utf-8")


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix(BOM), newline="")))


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)
