"""The delivery counter across a real gunicorn's two workers, and across a killed one.

Each worker writes its counts to PROMETHEUS_MULTIPROC_DIR; a scrape answered
by either sums every file, the killed worker's included (gunicorn.conf.py's
child_exit marks it dead, which drops only its live gauges).
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from submissions.tokens import sign_token
from tests.servers import Gunicorn, create_bot, migrated_sqlite, request, worker_pids

TOKEN = "multiprocess-metrics-token-0123456789"


def delivered(port: int) -> float:
    status, _, body = request(
        port, "GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200
    return sum(
        sample.value
        for family in text_string_to_metric_families(body.decode())
        if family.name == "webhooks_deliveries"
        for sample in family.samples
        if sample.name == "webhooks_deliveries_total"
        and sample.labels["status"] == "processed"
    )


def post(port: int, secret: str, delivery_id: str) -> int:
    body = json.dumps(
        {"handler": "save-form", "id": delivery_id, "formValues": {"n": "1"}}
    ).encode()
    headers = {
        "Authorization": f"Bearer {sign_token(secret, body=body)}",
        "Content-Type": "application/json",
        # A new connection each time: gunicorn's workers share the socket,
        # so deliveries land on both.
        "Connection": "close",
    }
    return request(port, "POST", "/webhooks/metered/", body, headers)[0]


def test_counts_add_up_across_workers_and_a_killed_worker(tmp_path):
    # Its own SQLite file whatever the suite's database: the counting is the
    # same, and the server's rows never meet the test's transaction.
    database = migrated_sqlite(tmp_path / "metered.sqlite3")
    secret = create_bot(database, "metered")
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")  # a previous run's
    server = Gunicorn(
        tmp_path,
        DATABASE_URL=database,
        DJANGO_METRICS_TOKEN=TOKEN,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    try:
        assert not (metrics_dir / "counter_999999.db").exists()  # emptied at start
        workers = worker_pids(server.process.pid)
        assert len(workers) == 2

        # Until both workers have answered some (which takes which is the
        # kernel's choice), within a bound.
        sent = 0
        while sent < 20 or len(list(metrics_dir.glob("counter_*.db"))) < 2:
            assert sent < 300, "one worker took every delivery"
            assert post(server.port, secret, f"mp-{sent}") == 200
            sent += 1
        assert delivered(server.port) == sent

        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            now = worker_pids(server.process.pid)
            if killed not in now and len(now) == 2:
                break
            assert time.monotonic() < deadline, "no replacement worker"
            time.sleep(0.2)
        server.wait_up()

        # The killed worker's deliveries are still counted, once.
        assert delivered(server.port) == sent
        for n in range(sent, sent + 10):
            assert post(server.port, secret, f"mp-{n}") == 200
        assert delivered(server.port) == sent + 10
    finally:
        server.stop()


pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/stat"), reason="finds gunicorn's workers in /proc"
)
