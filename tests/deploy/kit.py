"""The deploy kit's files, made runnable here: paths and ports substituted."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

PGBOUNCER = "/usr/sbin/pgbouncer"


def ini_with(text: str, **values: str) -> str:
    """``text`` (an ini file) with each ``key = value`` line of ``values`` replaced."""
    for key, value in values.items():
        text, found = re.subn(
            rf"^{key}\s*=.*$", f"{key} = {value}", text, count=1, flags=re.M
        )
        assert found, f"{key} is not in the file"
    return text


@contextmanager
def pgbouncer_running(
    *, port: int, database: str, upstream_port: int = 5432
) -> Iterator[Path]:
    """deploy/pgbouncer/pgbouncer.ini, run by the real pgbouncer on ``port``.

    Only what must differ here changes: the address, trust instead of SCRAM
    (the test PostgreSQL trusts local connections), files in a temporary
    directory, and the one database. PgBouncer refuses to run as root: as
    root it runs as ``postgres`` (``runuser``), in a directory postgres owns.
    """
    workdir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    workdir.chmod(0o755)
    (workdir / "userlist.txt").write_text('"postgres" ""\n')
    text = (DEPLOY / "pgbouncer" / "pgbouncer.ini").read_text()
    text = re.sub(
        r"^webhooks = .*$",
        f"{database} = host=127.0.0.1 port={upstream_port} dbname={database}",
        text,
        flags=re.M,
    )
    config = workdir / "pgbouncer.ini"
    config.write_text(
        ini_with(
            text,
            listen_port=str(port),
            unix_socket_dir="",
            auth_type="trust",
            auth_file=str(workdir / "userlist.txt"),
            logfile=str(workdir / "pgbouncer.log"),
            pidfile=str(workdir / "pgbouncer.pid"),
        )
    )
    command = [PGBOUNCER, str(config)]
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        for path in [workdir, *workdir.iterdir()]:
            os.chown(path, postgres.pw_uid, postgres.pw_gid)
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(  # noqa: S603 - Debian's pgbouncer, our config
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield workdir
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)
