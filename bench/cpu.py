"""CPU seconds (user + system) of a process tree, read from /proc.

CPU per request is the figure that stays stable on a shared machine, where
requests per second move with whatever else runs. ``tree_cpu(pid)`` is the
CPU time the process ``pid`` and every descendant have used so far,
including descendants that have already exited and been waited for (their
time is in their parent's ``cutime``/``cstime``), so a gunicorn worker
recycled between two readings still counts. Two readings around a run,
subtracted, are that run's CPU.

``postgres_pid()`` finds the PostgreSQL server's postmaster on this machine,
so the database's share (its backends, the WAL writer, the checkpointer) is
measured the same way. On a machine where other programs use the same
server, ``PostgresBackends(url)`` is the fairer reading: only the backends
connected to the benchmark's database (the reader's own excluded) and the
server's WAL writer, checkpointer and background writer, which every
commit wakes. ``machine_busy()`` is the whole machine's CPU time, to tell
how much of it others used during a run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class _Stat:
    pid: int
    ppid: int
    name: str
    #: utime + stime: this process's own CPU ticks.
    own: int
    #: cutime + cstime: its waited-for children's CPU ticks.
    reaped: int


def _stat(pid: int) -> _Stat | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:  # gone between listing and reading
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state) of proc(5): utime is field 14.
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return _Stat(pid, int(fields[1]), name, utime + stime, cutime + cstime)


def _all() -> list[_Stat]:
    stats = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                stats.append(stat)
    return stats


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and all its descendants, live or reaped."""
    stats = _all()
    children: dict[int, list[_Stat]] = {}
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat)
    root = next((s for s in stats if s.pid == pid), None)
    if root is None:
        raise ProcessLookupError(pid)
    ticks, todo = 0, [root]
    while todo:
        stat = todo.pop()
        ticks += stat.own + stat.reaped
        todo.extend(children.get(stat.pid, []))
    return ticks / TICKS


def postgres_pid() -> int | None:
    """The postmaster of the local PostgreSQL server: a ``postgres`` process
    whose parent is not one; None if there is none (or more than one)."""
    stats = _all()
    postgres = {s.pid for s in stats if s.name in ("postgres", "postmaster")}
    roots = [
        s.pid
        for s in stats
        if s.name in ("postgres", "postmaster") and s.ppid not in postgres
    ]
    return roots[0] if len(roots) == 1 else None


def machine_busy() -> float:
    """CPU seconds all CPUs have spent busy since boot (``/proc/stat``: user,
    nice, system, irq, softirq; not idle, iowait or steal). Less what a run
    measured of its own, this is what everything else on the machine used."""
    fields = (PROC / "stat").read_text().split("\n", 1)[0].split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / TICKS


def own_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds each of ``pids`` has used itself (children not included)."""
    found = {}
    for pid in pids:
        stat = _stat(pid)
        if stat is not None:
            found[pid] = stat.own / TICKS
    return found


class PostgresBackends:
    """The PostgreSQL processes that work for one database, read per process.

    Backends connected to the database named in ``url`` (the reader's own
    connection excluded) and the server's shared writers. A backend that
    exits between two readings loses what it used since the first one, so
    measure servers whose connections persist (``CONN_MAX_AGE``, a pool).
    """

    SHARED = ("walwriter", "checkpointer", "background writer")

    def __init__(self, url: str) -> None:
        self.url = url

    def pids(self) -> list[int]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE (datname = current_database() AND pid <> pg_backend_pid())"
                " OR backend_type = ANY(%s)",
                [list(self.SHARED)],
            ).fetchall()
        return [pid for (pid,) in rows]


class CpuMeter:
    """Readings of several processes at once: ``start()``, then ``stop()``
    returns {label: CPU seconds since start}.

    Each label names a process tree (a pid: ``tree_cpu``) or a
    ``PostgresBackends`` (its processes, each read on its own).
    """

    def __init__(self, **sources: int | PostgresBackends | None) -> None:
        self.sources = {k: v for k, v in sources.items() if v is not None}
        self._start: dict[str, float | dict[int, float]] = {}

    def _read(self, source: int | PostgresBackends) -> float | dict[int, float]:
        if isinstance(source, PostgresBackends):
            return own_cpu(source.pids())
        return tree_cpu(source)

    def start(self) -> None:
        self._start = {k: self._read(v) for k, v in self.sources.items()}

    def stop(self) -> dict[str, float]:
        used = {}
        for label, source in self.sources.items():
            now, then = self._read(source), self._start[label]
            if isinstance(now, dict) and isinstance(then, dict):
                # A process new since start() counts from zero.
                seconds = sum(t - then.get(pid, 0.0) for pid, t in now.items())
            else:
                seconds = now - then  # type: ignore[operator]
            used[label] = round(seconds, 3)
        return used
