"""DATABASE_REPLICA_URL: the replica alias, its router and middleware, or nothing."""

import json
import subprocess
import sys

import pytest

from tests.servers import ROOT, clean_env

SCRIPT = (
    "import django, json; django.setup(); from django.conf import settings;"
    "r = settings.DATABASES.get('replica');"
    "print(json.dumps({'replica': r and {k: r[k] for k in ('HOST', 'PORT', 'NAME',"
    " 'CONN_MAX_AGE')} | {'pool': 'pool' in r.get('OPTIONS', {})},"
    " 'routers': settings.DATABASE_ROUTERS,"
    " 'middleware': [m for m in settings.MIDDLEWARE if 'replica' in m],"
    " 'after': settings.MIDDLEWARE[settings.MIDDLEWARE.index("
    "'webhookproject.edge.EdgeMiddleware') + 1]}))"
)


def settings_with(**env: str) -> dict:
    result = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=clean_env(
            DATABASE_URL="postgres://app@db.example.com:5432/webhooks", **env
        ),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_replica_url_adds_the_alias_router_and_middleware():
    found = settings_with(
        DATABASE_REPLICA_URL="postgres://app@replica.example.com:5433/webhooks"
    )
    assert found["replica"] == {
        "HOST": "replica.example.com",
        "PORT": 5433,
        "NAME": "webhooks",
        "CONN_MAX_AGE": 60,
        "pool": False,
    }
    assert found["routers"] == ["webhookproject.replica.ReplicaRouter"]
    assert found["middleware"] == ["webhookproject.replica.ReplicaReadsMiddleware"]
    assert found["after"] == "webhookproject.replica.ReplicaReadsMiddleware"


@pytest.mark.parametrize("value", ["", None])
def test_without_a_replica_url_nothing_changes(value):
    env = {} if value is None else {"DATABASE_REPLICA_URL": value}
    found = settings_with(**env)
    assert found["replica"] is None
    assert found["routers"] == []
    assert found["middleware"] == []
