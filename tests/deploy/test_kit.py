"""The deploy kit (deploy/), checked by the real programs.

systemd-analyze verifies the units, promtool the Prometheus configuration
and rules, pgbouncer starts with its file, and nginx runs the site (with a
self-signed certificate) in front of two real gunicorns, routing by path.
Each skips, naming the program, where it is missing; CI installs them
(scripts/install-services.sh).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from submissions.tokens import sign_token
from tests.deploy.kit import DEPLOY, PGBOUNCER, pgbouncer_running
from tests.servers import (
    ROOT,
    Gunicorn,
    create_bot,
    free_port,
    migrated_sqlite,
)

SYSTEMD_ANALYZE = "/usr/bin/systemd-analyze"
PROMTOOL = "/usr/bin/promtool"
NGINX = "/usr/sbin/nginx"
VENV_BIN = Path(sys.executable).parent


def needs(program: str):
    return pytest.mark.skipif(
        not Path(program).exists(),
        reason=f"{program} is missing (scripts/install-services.sh installs it)",
    )


def run(*command: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the machine's own programs
        command, capture_output=True, text=True, timeout=60, check=False, **kwargs
    )


# -- systemd ----------------------------------------------------------------------


@needs(SYSTEMD_ANALYZE)
def test_the_units_verify(tmp_path):
    # The units name /srv/webhooks; here the release is this checkout and its
    # venv (systemd-analyze checks that each ExecStart program exists).
    (tmp_path / "env").write_text("DJANGO_DEBUG=false\n")
    units = sorted((DEPLOY / "systemd").iterdir())
    assert {u.name for u in units} >= {
        "webhooks-intake.service",
        "webhooks-staff.service",
        "webhooks-worker.service",
        "webhooks-purge.service",
        "webhooks-purge.timer",
        "webhooks-alert-digest.service",
        "webhooks-alert-digest.timer",
        "webhooks-tallies.service",
        "webhooks-tallies.timer",
    }
    for unit in units:
        text = (
            unit.read_text()
            .replace("/srv/webhooks/.venv/bin/", f"{VENV_BIN}/")
            .replace("/srv/webhooks", str(ROOT))
            .replace("/etc/webhooks/env", str(tmp_path / "env"))
        )
        (tmp_path / unit.name).write_text(text)
    result = run(
        SYSTEMD_ANALYZE,
        "verify",
        "--man=no",
        *[str(tmp_path / u.name) for u in units],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""  # not even an unknown key


def test_the_units_run_the_documented_commands():
    units = DEPLOY / "systemd"
    assert (
        "gunicorn -c gunicorn.conf.py"
        in (units / "webhooks-intake.service").read_text()
    )
    staff = (units / "webhooks-staff.service").read_text()
    assert "GUNICORN_BIND=127.0.0.1:8001" in staff
    assert "PROMETHEUS_MULTIPROC_DIR=/run/webhooks-staff" in staff
    assert "db_worker --no-reload" in (units / "webhooks-worker.service").read_text()
    purge = (units / "webhooks-purge.service").read_text()
    assert "purge_events --policies" in purge
    assert "tallies --count" in (units / "webhooks-tallies.service").read_text()
    assert "send_alert_digest" in (units / "webhooks-alert-digest.service").read_text()


# -- Prometheus -------------------------------------------------------------------


@needs(PROMTOOL)
def test_the_rules_check():
    result = run(
        PROMTOOL, "check", "rules", str(DEPLOY / "prometheus/webhooks-rules.yml")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


@needs(PROMTOOL)
def test_the_scrape_configuration_checks(tmp_path):
    rules = tmp_path / "webhooks-rules.yml"
    shutil.copy(DEPLOY / "prometheus/webhooks-rules.yml", rules)
    token = tmp_path / "webhooks-metrics-token"
    token.write_text("a-token\n")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        (DEPLOY / "prometheus/prometheus.yml")
        .read_text()
        .replace("/etc/prometheus/webhooks-rules.yml", str(rules))
        .replace("/etc/prometheus/webhooks-metrics-token", str(token))
    )
    result = run(PROMTOOL, "check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_rules_name_series_the_app_exports():
    rules = (DEPLOY / "prometheus/webhooks-rules.yml").read_text()
    exported = (ROOT / "observability/metrics.py").read_text() + (
        ROOT / "observability/collectors.py"
    ).read_text()
    for series in set(re.findall(r"\b(webhooks_[a-z_]+)", rules)):
        name = re.sub(r"_(total|count|sum|bucket)$", "", series)
        assert f'"{name}"' in exported, series


# -- PgBouncer ----------------------------------------------------------------------


@needs(PGBOUNCER)
def test_pgbouncer_starts_with_its_file():
    port = free_port()
    with pgbouncer_running(
        port=port, database="webhooks", upstream_port=free_port()
    ) as workdir:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                log = workdir / "pgbouncer.log"
                assert time.monotonic() < deadline, (
                    log.read_text() if log.exists() else ""
                )
                time.sleep(0.2)
        log = (workdir / "pgbouncer.log").read_text()
    assert "listening on 127.0.0.1" in log
    assert "FATAL" not in log


# -- nginx ----------------------------------------------------------------------------


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    result = run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=hooks.example.com",
        "-keyout",
        str(key),
        "-out",
        str(cert),
    )
    assert result.returncode == 0, result.stderr
    return cert, key


def nginx_prefix(tmp_path: Path, *, intake: int, staff: int) -> tuple[Path, int, int]:
    """The site in a tmp prefix on free ports, with a self-signed certificate."""
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    cert, key = self_signed(tmp_path)
    http, https = free_port(), free_port()
    site = (
        (DEPLOY / "nginx/webhooks.conf")
        .read_text()
        .replace("/etc/letsencrypt/live/hooks.example.com/fullchain.pem", str(cert))
        .replace("/etc/letsencrypt/live/hooks.example.com/privkey.pem", str(key))
        .replace("127.0.0.1:8000", f"127.0.0.1:{intake}")
        .replace("127.0.0.1:8001", f"127.0.0.1:{staff}")
        .replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;")
        .replace("listen 80;", f"listen 127.0.0.1:{http};")
        .replace("listen [::]:443 ssl http2;\n", "")
        .replace("listen [::]:80;\n", "")
    )
    (prefix / "webhooks.conf").write_text(site)
    (prefix / "nginx.conf").write_text(
        f"pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log;\n"
        "events {}\n"
        "http {\n"
        f"    access_log {prefix}/logs/access.log;\n"
        f"    client_body_temp_path {prefix}/body;\n"
        f"    proxy_temp_path {prefix}/proxy;\n"
        "    include webhooks.conf;\n"
        "}\n"
    )
    return prefix, http, https


@needs(NGINX)
def test_nginx_accepts_the_site(tmp_path):
    prefix, _, _ = nginx_prefix(tmp_path, intake=free_port(), staff=free_port())
    result = run(
        NGINX, "-t", "-p", str(prefix), "-c", "nginx.conf", "-g", "daemon off;"
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def https_request(port: int, method: str, path: str, body: bytes = b"", headers=None):
    import http.client

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)
    try:
        conn.request(
            method,
            path,
            body=body,
            headers={"Host": "hooks.example.com", **(headers or {})},
        )
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@needs(NGINX)
def test_a_request_through_nginx_reaches_the_right_pool(tmp_path):
    database = migrated_sqlite(tmp_path / "proxied.sqlite3")
    secret = create_bot(database, "proxied")
    production = {
        "DATABASE_URL": database,
        "DJANGO_ALLOWED_HOSTS": "hooks.example.com",
        "DJANGO_SECURE_PROXY_SSL_HEADER": "true",
        "DJANGO_SECURE_SSL_REDIRECT": "true",  # so a lost X-Forwarded-Proto shows
        "DJANGO_STATICFILES_STORAGE": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "GUNICORN_WORKERS": "1",
    }
    intake = Gunicorn(tmp_path, **production)
    staff = Gunicorn(tmp_path, **production)
    prefix, http, https = nginx_prefix(tmp_path, intake=intake.port, staff=staff.port)
    nginx = subprocess.Popen(  # noqa: S603 - Debian's nginx, our site
        [NGINX, "-p", str(prefix), "-c", "nginx.conf", "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", https), timeout=1).close()
                break
            except OSError:
                assert nginx.poll() is None, (prefix / "logs/error.log").read_text()
                assert time.monotonic() < deadline, "nginx did not come up"
                time.sleep(0.1)

        body = json.dumps(
            {"handler": "save-form", "id": "via-nginx", "formValues": {"a": "1"}}
        ).encode()
        delivery = https_request(
            https,
            "POST",
            "/webhooks/proxied/",
            body,
            {
                "Authorization": f"Bearer {sign_token(secret, body=body)}",
                "Content-Type": "application/json",
            },
        )
        login = https_request(https, "GET", "/admin/login/")
        too_large = https_request(
            https,
            "POST",
            "/webhooks/proxied/",
            b"x" * (1024 * 1024 + 1),
            {"Content-Type": "application/json"},
        )
        plain = subprocess.run(  # noqa: S603
            [
                sys.executable,
                "-c",
                f"import http.client as h; c=h.HTTPConnection('127.0.0.1',{http}); c.request('GET','/admin/',headers={{'Host':'hooks.example.com'}}); r=c.getresponse(); print(r.status, r.getheader('Location'))",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.split()
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
        intake.stop()
        staff.stop()

    status, headers, reply = delivery
    assert status == 200, reply
    assert headers["X-Webhook-Event-Id"]
    assert json.loads(reply)["blocks"]
    status, _, page = login
    assert status == 200  # not a redirect: Django saw X-Forwarded-Proto https
    assert b"csrfmiddlewaretoken" in page
    status, _, refused = too_large
    assert status == 413
    assert json.loads(refused)["error"] == "payload_too_large"
    assert plain == ["301", "https://hooks.example.com/admin/"]
    # Routed by path: the delivery went to one pool, the admin to the other.
    assert "POST /webhooks/proxied/" in intake.log_path.read_text()
    assert "/admin/login/" not in intake.log_path.read_text()
    assert "GET /admin/login/" in staff.log_path.read_text()
    assert "/webhooks/" not in staff.log_path.read_text()
