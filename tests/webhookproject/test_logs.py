"""Plain log lines: one line per record, whatever a logged value holds."""

from __future__ import annotations

import logging
import sys

import pytest

from webhookproject.logs import PlainFormatter

pytestmark = pytest.mark.django_db


def test_a_handler_name_with_a_newline_cannot_forge_a_plain_log_line(deliver, caplog):
    formatter = PlainFormatter("{levelname} {name} {message}", style="{")
    with caplog.at_level(logging.INFO, logger="submissions.intake"):
        deliver({"handler": "x\nINFO forged.logger delivery ok\r\x1b[2K\u2028y"})

    (record,) = [r for r in caplog.records if r.name == "submissions.intake"]
    line = formatter.format(record)
    assert "\n" not in line
    assert "\r" not in line
    assert "\x1b" not in line
    assert "\u2028" not in line
    assert "handler=x\\nINFO forged.logger delivery ok\\r\\x1b[2K\\u2028y" in line


def test_the_plain_formatter_keeps_a_traceback_on_its_lines():
    formatter = PlainFormatter("{message}", style="{")
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "a\nb", (), None)
        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    assert text.startswith("a\\nb\nTraceback")
