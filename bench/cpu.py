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
measured the same way: every database's, so another client of the same
server counts too. ``machine_busy()`` is the whole machine's CPU time, to
tell how much of it others used during a run.
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


class CpuMeter:
    """Readings of several process trees at once: ``start()``, then ``stop()``
    returns {label: CPU seconds since start}."""

    def __init__(self, **pids: int | None) -> None:
        self.pids = {label: pid for label, pid in pids.items() if pid is not None}
        self._start: dict[str, float] = {}

    def start(self) -> None:
        self._start = {label: tree_cpu(pid) for label, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        return {
            label: round(tree_cpu(pid) - self._start[label], 3)
            for label, pid in self.pids.items()
        }
