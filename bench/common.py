"""Shared pieces of the benchmark scripts: databases, Django, machine, results.

Every benchmark database's name contains ``bench``; the scripts refuse to
drop any other.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
SETTINGS = "bench.settings"


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class BenchError(Exception):
    """The benchmark could not run (setup, server); not a finding about the product."""


def database_url(name: str, server: str = PG_SERVER) -> str:
    return f"{server.rstrip('/')}/{name}"


def _pg_params(url: str) -> tuple[dict[str, str], str]:
    import environ

    config = environ.Env.db_url_config(url)
    if "postgresql" not in config["ENGINE"]:
        raise BenchError(f"A PostgreSQL URL is needed, not {url!r}.")
    params = {
        "dbname": "postgres",
        "user": config.get("USER"),
        "password": config.get("PASSWORD"),
        "host": config.get("HOST"),
        "port": str(config.get("PORT") or ""),
    }
    return {k: v for k, v in params.items() if v}, config["NAME"]


def database_exists(url: str) -> bool:
    import psycopg

    params, name = _pg_params(url)
    with psycopg.connect(**params, autocommit=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
    return row is not None


def database_recreate(url: str, *, marker: str = "bench") -> str:
    """Drop and create the database in ``url``; its name must contain ``marker``.

    Returns the name. The marker keeps the scripts off any database that is
    not theirs: ``bench`` for the benchmarks, ``soak`` for the soak test.
    """
    import psycopg
    from psycopg import sql

    params, name = _pg_params(url)
    if marker not in name:
        raise BenchError(
            f"Refusing to drop {name!r}: this script's database names contain "
            f"{marker!r}."
        )
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def sample_delivery(index: int, *, tag: str, handler: str) -> tuple[str, bytes]:
    """Delivery ``index`` of a run: its id and compact JSON body, three answers."""
    from handlers.wire import build_payload

    delivery_id = f"{tag}-{index:07d}"
    payload = build_payload(
        handler_name=handler,
        form_values={
            "name": f"{tag.title()} user {index}",
            "email": f"user{index}@example.com",
            "rating": index % 5 + 1,
        },
        conversation_id=f"{tag}-conversation-{index % 97}",
        user_id=f"{tag}-user-{index}",
        delivery_id=delivery_id,
    )
    return delivery_id, json.dumps(payload, separators=(",", ":")).encode()


def query_one(url: str, query: str) -> Any:
    """One value from ``url``'s database (None if the query fails, e.g. no table)."""
    import psycopg

    params, name = _pg_params(url)
    params["dbname"] = name
    try:
        with psycopg.connect(**params, autocommit=True) as conn:
            row = conn.execute(query).fetchone()
    except psycopg.Error:
        return None
    return row[0] if row else None


def django_env(url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "DATABASE_URL": url,
        "DJANGO_DEBUG": "false",
        # Production's manifest storage needs `collectstatic` first; the admin
        # pages timed here link the same files through plain storage.
        "DJANGO_STATICFILES_STORAGE": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
        ),
        **extra,
    }
    if "DJANGO_CONN_MAX_AGE" not in extra:  # measure the settings' default
        env.pop("DJANGO_CONN_MAX_AGE", None)
    return env


def manage(url: str, *args: str, quiet: bool = True) -> None:
    """Run ``manage.py args`` on ``url`` with the bench settings."""
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=django_env(url),
        capture_output=quiet,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(
            f"manage.py {' '.join(args)} failed:\n{(result.stderr or '')[-2000:]}"
        )


def django_setup(url: str) -> None:
    os.environ.update(django_env(url))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    pg = query_one(database_url("postgres"), "SHOW server_version")
    return {
        "nproc": os.cpu_count(),
        "ram_gib": round(int(meminfo[1]) / 1024 / 1024, 1),
        "postgresql": pg,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def median(values: Sequence[float]) -> float:
    return round(statistics.median(values), 3)


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {
        "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **data,
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
