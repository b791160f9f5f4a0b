"""The one JSON log format, shared by Django's LOGGING and gunicorn.conf.py.

One object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
``message``, plus every extra attribute of the record, so the intake's
``event_id``, ``bot``, ``handler``, ``status``, ``response_status`` and
``duration_ms`` arrive as keys a log pipeline can filter on. The plain
format (``PlainFormatter``) escapes control characters, as JSON does.
"""

import logging
import re
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


#: Characters that would break a plain log line or forge a new one: C0 and C1
#: controls (newline included), DEL, the Unicode line and paragraph
#: separators, and lone surrogates (which a UTF-8 stream cannot write).
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` on one line: each control character written as its escape."""
    return CONTROL_RE.sub(_escape, text)


class PlainFormatter(logging.Formatter):
    """One line per record: the message's control characters are escaped.

    A value logged from the wire (a handler name with a newline in it) can no
    longer start a line of its own. A traceback, added after the message,
    keeps its lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)
