"""bench/cpu.py reads CPU time of a process tree, reaped children included."""

import os
import signal
import subprocess
import sys
import time

from bench.cpu import (
    CpuMeter,
    PostgresBackends,
    machine_busy,
    postgres_pid,
    tree_cpu,
)

BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


def test_tree_cpu_counts_a_live_grandchild_and_a_reaped_child():
    # A parent that runs one child to completion (reaped: its time lands in
    # the parent's cutime), then starts another that burns while we read.
    script = (
        "import subprocess, sys, time\n"
        f"subprocess.run([sys.executable, '-c', {BURN.format(seconds=0.4)!r}])\n"
        f"child = subprocess.Popen([sys.executable, '-c', {BURN.format(seconds=5)!r}])\n"
        "print('ready', flush=True)\n"
        "child.wait()\n"
    )
    parent = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert parent.stdout.readline().strip() == "ready"
        first = tree_cpu(parent.pid)
        assert first >= 0.4  # the reaped child's burn is counted
        time.sleep(0.5)
        second = tree_cpu(parent.pid)
        assert second - first >= 0.2  # the live grandchild is burning
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()


def test_meter_reports_per_label_and_skips_none():
    meter = CpuMeter(me=os.getpid(), nothing=None)
    meter.start()
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    used = meter.stop()
    assert set(used) == {"me"}
    assert used["me"] >= 0.15


def test_unknown_pid_is_an_error():
    import pytest

    with pytest.raises(ProcessLookupError):
        tree_cpu(2**22 + 12345)


def test_postgres_pid_finds_the_running_server():
    # PostgreSQL runs on every machine this suite runs on (.ci/run starts it).
    pid = postgres_pid()
    assert pid is not None
    with open(f"/proc/{pid}/comm") as comm:
        assert comm.read().strip() in ("postgres", "postmaster")
    assert tree_cpu(pid) > 0


def test_postgres_backends_are_those_of_one_database():
    import psycopg

    url = "postgres://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(url, autocommit=True) as other:
        other_pid = other.execute("SELECT pg_backend_pid()").fetchone()[0]
        backends = PostgresBackends(url)
        pids = backends.pids()
        assert other_pid in pids  # a connection to that database
        meter = CpuMeter(pg=backends)
        meter.start()
        # Work in that backend shows in the reading.
        other.execute("SELECT count(*) FROM generate_series(1, 3000000)").fetchone()
        assert meter.stop()["pg"] > 0.05


def test_machine_busy_counts_this_process_burning():
    before = machine_busy()
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    assert machine_busy() - before >= 0.25
