"""The daily retention run (submissions/retention.py): queued once, keeps itself going."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from submissions.models import FormSubmission
from submissions.retention import retention_apply_daily, retention_schedule_daily
from tests.factories import FormSubmissionFactory, RetentionPolicyFactory

pytestmark = pytest.mark.django_db


def queued() -> list[DBTaskResult]:
    return list(
        DBTaskResult.objects.filter(
            task_path=retention_apply_daily.module_path, status="READY"
        )
    )


def test_scheduling_twice_queues_one_run():
    assert retention_schedule_daily(first_run_in=timedelta(hours=2)) is True
    assert retention_schedule_daily() is False

    (run,) = queued()
    assert run.run_after > timezone.now() + timedelta(hours=1)


def test_a_backend_that_cannot_defer_holds_no_schedule(settings):
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}
    }

    assert retention_schedule_daily() is False
    assert queued() == []


def test_the_run_applies_the_policies_and_queues_the_next_a_day_later():
    old = FormSubmissionFactory(handler_name="survey")
    FormSubmission.objects.filter(pk=old.pk).update(
        submitted_at=timezone.now() - timedelta(days=40)
    )
    kept = FormSubmissionFactory(handler_name="survey", bot=old.bot)
    RetentionPolicyFactory(bot=old.bot, handler_name="survey", keep_days=30)

    summary = retention_apply_daily.call()

    assert summary.startswith("1 submissions")
    assert list(FormSubmission.objects.values_list("pk", flat=True)) == [kept.pk]
    (run,) = queued()
    assert run.run_after > timezone.now() + timedelta(hours=23)
