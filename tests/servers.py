"""Real servers for the suite: a migrated database for them, and gunicorn."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.webhookproject.test_serving import ROOT, clean_env, free_port, request

__all__ = ["ROOT", "Gunicorn", "clean_env", "free_port", "request", "worker_pids"]


def worker_pids(master: int) -> set[int]:
    """The live children of process ``master`` (gunicorn's workers)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master and fields[0] != "Z":
            children.add(int(stat.parent.name))
    return children


class Gunicorn:
    """One gunicorn on a free port, with ``env`` over the clean environment."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.port = free_port()
        self.log_path = tmp_path / f"gunicorn-{self.port}.log"
        self.workers = int(env.get("GUNICORN_WORKERS", "2"))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
            cwd=ROOT,
            env=clean_env(
                **{
                    "DJANGO_SECURE_SSL_REDIRECT": "false",
                    "GUNICORN_BIND": f"127.0.0.1:{self.port}",
                    "GUNICORN_THREADS": "4",
                    **env,
                    "GUNICORN_WORKERS": str(self.workers),
                }
            ),
            stdout=self.log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        self.wait_up()

    def wait_up(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            try:
                if request(self.port, "GET", "/healthz")[0] in (200, 503):
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def migrated_sqlite(path: Path) -> str:
    """A SQLite file migrated by a subprocess, as a DATABASE_URL."""
    url = f"sqlite:///{path}"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=clean_env(DATABASE_URL=url),
        check=True,
        timeout=300,
    )
    return url


def create_bot(database_url: str, slug: str) -> str:
    """A bot in that database, made by a subprocess; returns its secret."""
    script = (
        "import django, json; django.setup();"
        "from submissions.models import Bot;"
        f"print(json.dumps(Bot.objects.create(name={slug!r}, slug={slug!r}).secret))"
    )
    result = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=clean_env(DATABASE_URL=database_url, DJANGO_LOG_LEVEL="CRITICAL"),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])
