"""Gunicorn settings for production: `gunicorn -c gunicorn.conf.py`.

Every knob comes from the environment, like Django's own settings:

==========================  ==========================  ============================
variable                    default                     meaning
==========================  ==========================  ============================
GUNICORN_BIND               127.0.0.1:8000              address (behind a proxy)
GUNICORN_WORKERS            cores + 1                   worker processes
GUNICORN_THREADS            32                          threads per worker (gthread; 1: sync)
GUNICORN_TIMEOUT            30                          seconds before a silent worker is killed
GUNICORN_GRACEFUL_TIMEOUT   30                          seconds to finish requests on stop/reload
GUNICORN_KEEPALIVE          5                           seconds an idle keep-alive connection waits
GUNICORN_MAX_REQUESTS       20000                       requests before a worker is recycled (0: never)
GUNICORN_MAX_REQUESTS_JITTER  2000                      random spread so workers do not recycle together
GUNICORN_LOG_LEVEL          info                        gunicorn's error-log level
GUNICORN_CONTROL_SOCKET     (off)                       path of gunicorn's control socket
PROMETHEUS_MULTIPROC_DIR    (off)                       the workers' metrics files (emptied at start)
DJANGO_LOG_FORMAT           json (plain if DEBUG)       gunicorn's own logs, like Django's
==========================  ==========================  ============================

A ``.env`` file beside this one is read first, as the Django settings read it.

The Django settings module comes from DJANGO_SETTINGS_MODULE (default
``webhookproject.settings``) and the database from DATABASE_URL.

Why threads (docs/deployment.md "Serving model", BENCHMARKS.md): a handler
that waits 200 ms on an API holds its thread, not the process, so
(cores + 1) x 32 requests wait at once; with sync workers, 5 of them capped
the whole server at 25 deliveries a second. Handlers (``def`` and ``async
def``) run in a pool of ``WEBHOOK_HANDLER_THREADS`` (32) threads per process,
so the request answers at the deadline; the database connection goes back to
the pool while the handler waits (``DJANGO_DB_POOL``, on by default on
PostgreSQL), so connections stay at workers x ``DJANGO_DB_POOL_MAX_SIZE``.
"""

import gc
import multiprocessing
import os
from pathlib import Path

import environ

from webhookproject.logs import json_formatter

environ.Env.read_env(Path(__file__).resolve().parent / ".env")
env = environ.Env()

wsgi_app = "webhookproject.wsgi:application"
proc_name = "logicdialog-webhooks"

bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 32))

timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))

# Recycling workers bounds the damage of a slow leak (in a handler's code,
# say); the jitter keeps them from all restarting at the same moment. A
# restart costs about 0.4 s of CPU (loading Django): every 1,000 requests
# that was a tenth of the intake's CPU, every 20,000 it is under 1 %
# (bench/memory.py, BENCHMARKS.md "Worker recycling").
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 20000))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", 2000))


def post_worker_init(worker):
    """Once the worker has loaded Django: its objects leave the garbage collector's care.

    Everything imported so far lives as long as the process; ``gc.freeze()``
    moves it to a generation no collection walks, so each full collection
    looks only at what requests made.
    """
    gc.freeze()


def on_starting(server):
    """Before any worker: empty the metrics directory of a previous run.

    Each worker writes its series to files in ``PROMETHEUS_MULTIPROC_DIR``
    (prometheus_client's multiprocess mode) and a scrape of any worker sums
    them; files left by an earlier master would add its counts twice. Only
    the ``*.db`` files prometheus_client writes are removed. One directory
    per gunicorn (the webhook and staff pools each have their own).
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()


def child_exit(server, worker):
    """A worker is gone (recycled, killed): its gauges leave the sums; its counts stay."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# Same one-object-per-line JSON as the application's logs, so a log pipeline
# parses every line of the process the same way.
debug = env.bool("DJANGO_DEBUG", default=False)
if env("DJANGO_LOG_FORMAT", default="plain" if debug else "json") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": json_formatter()},
        "handlers": {
            "error": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
        },
        # Gunicorn merges this over its defaults, whose root logger names a
        # handler defined there: name ours. Django sets its own in each worker.
        "root": {"level": "INFO", "handlers": ["error"]},
        "loggers": {
            "gunicorn.error": {
                "level": loglevel.upper(),
                "handlers": ["error"],
                "propagate": False,
            },
            "gunicorn.access": {
                "level": "INFO",
                "handlers": ["access"],
                "propagate": False,
            },
        },
    }

# Gunicorn 25.1+ opens a control socket by default, one path per user; off
# unless asked for, so two instances on one host never fight over it.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True
