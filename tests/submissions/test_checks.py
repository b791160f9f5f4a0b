import pytest
from django.core.checks import run_checks


def ids() -> list[str]:
    return [message.id for message in run_checks()]


def test_default_settings_pass():
    assert not [i for i in ids() if i.startswith("submissions.")]


@pytest.mark.parametrize(
    ("webhooks", "check_id"),
    [
        ({"JWT_ALGORITHMS": ["RS256"]}, "submissions.E002"),
        ({"JWT_ALGORITHMS": ["none"]}, "submissions.E002"),
        ({"JWT_ALGORITHMS": []}, "submissions.E002"),
        ({"MAX_BODY_BYTES": 0}, "submissions.E003"),
        ({"MAX_BODYBYTES": 10}, "submissions.E001"),
    ],
)
def test_bad_webhook_settings_are_errors(settings, webhooks, check_id):
    settings.WEBHOOKS = webhooks
    assert check_id in ids()
