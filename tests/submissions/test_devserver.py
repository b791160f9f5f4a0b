"""The development server's chunked-body decoding (runserver reads chunks too)."""

from __future__ import annotations

import io

import pytest

from submissions.devserver import MalformedChunks, read_chunked


def chunked(*pieces: bytes, trailer: bytes = b"") -> io.BytesIO:
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
    return io.BytesIO(body + b"0\r\n" + trailer + b"\r\nNEXT REQUEST")


def test_chunks_are_joined_and_the_stream_stops_after_them():
    stream = chunked(b"hello ", b"world", trailer=b"X-Trailer: 1\r\n")
    assert read_chunked(stream, limit=100) == (b"hello world", True)
    assert stream.read() == b"NEXT REQUEST"


def test_chunk_extensions_are_ignored():
    stream = io.BytesIO(b"5;name=value\r\nhello\r\n0\r\n\r\n")
    assert read_chunked(stream, limit=100) == (b"hello", True)


def test_reading_stops_at_the_limit():
    stream = chunked(b"a" * 10, b"b" * 10)
    body, complete = read_chunked(stream, limit=15)
    assert (body, complete) == (b"a" * 10 + b"b" * 5, False)


@pytest.mark.parametrize(
    "raw",
    [
        b"zz\r\nhello\r\n0\r\n\r\n",  # not hex
        b"0x5\r\nhello\r\n0\r\n\r\n",  # int() would take it
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhel",  # ends inside a chunk
        b"3\r\nhello\r\n0\r\n\r\n",  # longer than its size
        b"5\r\nhello\r\n",  # no last chunk
        b"1" * 5000,  # a size line that never ends
    ],
)
def test_malformed_chunks_are_refused(raw):
    with pytest.raises(MalformedChunks):
        read_chunked(io.BytesIO(raw), limit=100)
