"""DJANGO_DB_TRANSACTION_POOLER: no server-side cursors, no prepared statements."""

import json
import subprocess
import sys

import pytest

from tests.servers import ROOT, clean_env

SCRIPT = (
    "import json; from django.conf import settings; d = settings.DATABASES['default'];"
    "print(json.dumps([d.get('DISABLE_SERVER_SIDE_CURSORS', False),"
    " d.get('OPTIONS', {}).get('prepare_threshold', 'unset')]))"
)


@pytest.mark.parametrize(
    ("pooler", "expected"), [("true", [True, None]), ("false", [False, "unset"])]
)
def test_the_pooler_setting_turns_off_what_a_transaction_pooler_breaks(
    pooler, expected
):
    result = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", "import django; django.setup();" + SCRIPT],
        cwd=ROOT,
        env=clean_env(
            DATABASE_URL="postgres://app@pgbouncer.example.com:6432/webhooks",
            DJANGO_DB_TRANSACTION_POOLER=pooler,
        ),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == expected
