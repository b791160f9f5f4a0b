"""``runserver`` that reads chunked request bodies, as gunicorn does.

Django's development server passes a request body on only when it comes
with a ``Content-Length``; a body sent with ``Transfer-Encoding: chunked``
(proxies and Node clients send them) would reach the webhook empty, and its
answers would be lost. This request handler decodes the chunks first, never
keeping more than ``MAX_BODY_BYTES`` plus one byte, and hands the body on
with its length; malformed chunks reach the app as ``webhooks.body_error``
in the environ, so the webhook answers 400 and stores the request. The
connection is closed after such a request. Its listen queue is deeper than
Django's, so a burst of deliveries waits to be accepted instead of being
reset.
"""

from __future__ import annotations

import io
import re
from typing import Any, BinaryIO

from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

from submissions.conf import webhook_settings
from submissions.incoming import BODY_ERROR

#: Longest chunk-size or trailer line read.
MAX_LINE = 4096
MAX_TRAILER_LINES = 100
CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,15}")


class MalformedChunks(ValueError):
    pass


def read_chunked(stream: BinaryIO, limit: int) -> tuple[bytes, bool]:
    """Decode a chunked body from ``stream``: (at most ``limit`` bytes, whether it ended)."""
    body = bytearray()
    while True:
        line = stream.readline(MAX_LINE)
        if not line.endswith(b"\n"):
            raise MalformedChunks("A chunk size line is missing or too long.")
        size_text = line.split(b";", 1)[0].strip()
        if not CHUNK_SIZE_RE.fullmatch(size_text):  # int() would take "0x1f", "1_0"
            raise MalformedChunks(f"Bad chunk size {size_text[:20]!r}.")
        size = int(size_text, 16)
        if size == 0:
            break
        room = limit - len(body)
        if size > room:
            body += stream.read(room)
            return bytes(body), False
        data = stream.read(size)
        if len(data) < size:
            raise MalformedChunks("The body ended inside a chunk.")
        body += data
        if stream.readline(MAX_LINE).strip():
            raise MalformedChunks("A chunk is longer than its size.")
    for _ in range(MAX_TRAILER_LINES):  # trailer fields, ignored
        if not stream.readline(MAX_LINE).strip():
            return bytes(body), True
    raise MalformedChunks("Too many trailer fields.")


class _BodyFirst:
    """The decoded body, then the connection's own stream."""

    def __init__(self, body: bytes, rest: BinaryIO) -> None:
        self._body = io.BytesIO(body)
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        return self._body.read(size) or self._rest.read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._body.readline(size) or self._rest.readline(size)


class ChunkedRequestHandler(WSGIRequestHandler):
    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        encoding = self.headers.get("Transfer-Encoding", "")
        if "chunked" not in encoding.lower() or "Content-Length" in self.headers:
            return True
        self.body_error = ""
        try:
            body, _ = read_chunked(self.rfile, webhook_settings().max_body_bytes + 1)
        except MalformedChunks as exc:
            # The app answers (and the webhook stores the request) all the same.
            body, self.body_error = b"", str(exc)
        self.close_connection = True  # what is left of a long body is not read
        self.rfile = _BodyFirst(body, self.rfile)  # type: ignore[assignment]
        self.headers["Content-Length"] = str(len(body))
        return True

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        if getattr(self, "body_error", ""):
            environ[BODY_ERROR] = self.body_error
        return environ


class ChunkedWSGIServer(WSGIServer):
    #: Connections waiting to be accepted (Django's server allows 10): a
    #: burst of deliveries beyond that was reset by the kernel.
    request_queue_size = 128

    def __init__(
        self, server_address: Any, handler_class: Any, *args: Any, **kwargs: Any
    ):
        super().__init__(server_address, ChunkedRequestHandler, *args, **kwargs)
