"""The one JSON log format, shared by Django's LOGGING and gunicorn.conf.py.

One object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
``message``, plus every extra attribute of the record, so the intake's
``event_id``, ``bot``, ``handler``, ``status``, ``response_status`` and
``duration_ms`` arrive as keys a log pipeline can filter on.
"""

from typing import Any

LOG_FORMATS = ("json", "plain")


def json_formatter() -> dict[str, Any]:
    return {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "{levelname}{name}{message}",
        "style": "{",
        "rename_fields": {"levelname": "level", "name": "logger"},
        "timestamp": "time",
    }
