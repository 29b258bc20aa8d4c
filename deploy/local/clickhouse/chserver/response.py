"""Writing the answer to a query request: whole, spooled or streamed, and errors.

What can still be said depends on what has already gone out (once the headers are sent an
error can only travel in-band, or not at all), so that state lives here, in one object,
beside every way of writing; the query handler decides what to answer, this decides how.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from typing import Callable, Iterator, List, Optional, Protocol, Tuple

from .body import BodyReader
from .config import Config
from .encoding import BodyEncoder
from .engine import Stats
from .errors import ClickHouseError
from .request import Request

CONTENT_TYPES = {
    "tabseparated": "text/tab-separated-values; charset=UTF-8",
    "tsv": "text/tab-separated-values; charset=UTF-8",
    "tabseparatedraw": "text/tab-separated-values; charset=UTF-8",
    "tabseparatedwithnames": "text/tab-separated-values; charset=UTF-8",
    "tabseparatedwithnamesandtypes": "text/tab-separated-values; charset=UTF-8",
    "csv": "text/csv; charset=UTF-8; header=absent",
    "csvwithnames": "text/csv; charset=UTF-8; header=present",
    "csvwithnamesandtypes": "text/csv; charset=UTF-8; header=present",
    "json": "application/json; charset=UTF-8",
    "jsoncompact": "application/json; charset=UTF-8",
    "jsoneachrow": "application/x-ndjson; charset=UTF-8",
    "jsoncompacteachrow": "application/x-ndjson; charset=UTF-8",
    "jsonstrings": "application/json; charset=UTF-8",
    "xml": "application/xml; charset=UTF-8",
}
BINARY_CONTENT_TYPE = "application/octet-stream"
BINARY_FORMATS = {"rowbinary", "rowbinarywithnames", "rowbinarywithnamesandtypes", "native", "parquet", "arrow", "arrowstream", "orc", "avro", "msgpack", "protobuf", "capnproto"}


class Wire(Protocol):
    """The connection's byte-level output (the connection handler provides it)."""

    def send(self, data: bytes) -> None: ...

    def head_bytes(self, status: int, headers: List[Tuple[str, str]], keep_alive: bool) -> bytes: ...


class QueryResponse:
    """The response to one query request, and how much of it has gone out."""

    def __init__(self, wire: Wire, config: Config, request: Request, query_id: str):
        self.wire = wire
        self.config = config
        self.request = request
        self.query_id = query_id
        # Set by the query handler once they exist: the request body (drained before
        # answering) and the session's counters (for X-ClickHouse-Summary).
        self.body: Optional[BodyReader] = None
        self.stats: Optional[Stats] = None
        self.format_name = ""
        self.headers_sent = False
        self.status = 200
        self.error_code = 0
        self.sent_bytes = 0
        self.keep_alive = True
        # Called once, just before the response's last bytes go out. ClickHouse frees a
        # query's id when the query finishes, before the client can have read the end of the
        # answer, so a client may reuse the id as soon as it has the answer.
        self.on_finished: Optional[Callable[[], None]] = None

    def finished(self) -> None:
        callback, self.on_finished = self.on_finished, None
        if callback is not None:
            callback()

    def common_headers(self) -> List[Tuple[str, str]]:
        stats = self.stats if self.stats is not None else Stats()
        return [
            ("X-ClickHouse-Server-Display-Name", self.config.display_name),
            ("X-ClickHouse-Query-Id", self.query_id),
            ("X-ClickHouse-Timezone", "UTC"),
            ("X-ClickHouse-Summary", json.dumps(stats.summary(), separators=(",", ":"))),
        ]

    def content_type(self) -> str:
        lower = self.format_name.lower()
        if lower in BINARY_FORMATS:
            return BINARY_CONTENT_TYPE
        return CONTENT_TYPES.get(lower, "text/plain; charset=UTF-8")

    def respond_ok(self, body: bytes, content_type: str, encoder: Optional[BodyEncoder] = None) -> None:
        headers = self.common_headers()
        if self.format_name:
            headers.append(("X-ClickHouse-Format", self.format_name))
        headers.append(("Content-Type", content_type))
        if encoder is not None and encoder.encoding:
            headers.append(("Content-Encoding", encoder.encoding))
        headers.append(("Content-Length", str(len(body))))
        self.finish_body()
        out = self.wire.head_bytes(200, headers, self.keep_alive) + body
        self.headers_sent = True
        self.finished()
        self.wire.send(out)
        self.sent_bytes += len(out)

    def finish_body(self) -> None:
        """A request whose body was not read to the end cannot be followed by another."""
        if self.body is not None and not self.body.finished:
            if not self.body.drain(self.config.drain_limit_bytes):
                self.keep_alive = False

    def stream_result(self, pieces: Iterator[bytes], encoder: BodyEncoder, wait_end: bool) -> None:
        buffered: List[bytes] = []
        size = 0
        exhausted = True
        for piece in pieces:  # engine errors here are still answered with a proper status
            buffered.append(encoder.piece(piece))
            # Counted before compression so that when streaming starts does not depend on
            # how well the data compresses.
            size += len(piece)
            if size >= self.config.response_buffer_bytes:
                exhausted = False
                break
        if exhausted:
            buffered.append(encoder.finish())
            self.respond_ok(b"".join(buffered), self.content_type(), encoder)
            return
        if wait_end:
            self.respond_spooled(buffered, pieces, encoder)
            return
        self.respond_streaming(buffered, pieces, encoder)

    def respond_spooled(self, buffered: List[bytes], pieces: Iterator[bytes], encoder: BodyEncoder) -> None:
        with tempfile.SpooledTemporaryFile(max_size=self.config.spool_memory_bytes, dir=self.config.tmp_dir) as spool:
            for chunk in buffered:
                spool.write(chunk)
            buffered.clear()
            for piece in pieces:
                spool.write(encoder.piece(piece))
            spool.write(encoder.finish())
            length = spool.tell()
            spool.seek(0)
            headers = self.common_headers()
            headers += [("X-ClickHouse-Format", self.format_name), ("Content-Type", self.content_type())]
            if encoder.encoding:
                headers.append(("Content-Encoding", encoder.encoding))
            headers.append(("Content-Length", str(length)))
            self.finish_body()
            self.headers_sent = True
            self.finished()
            self.wire.send(self.wire.head_bytes(200, headers, self.keep_alive))
            while True:
                chunk = spool.read(1 << 20)
                if not chunk:
                    break
                self.wire.send(chunk)
                self.sent_bytes += len(chunk)

    def respond_streaming(self, buffered: List[bytes], pieces: Iterator[bytes], encoder: BodyEncoder) -> None:
        # ClickHouse 25.11+ protocol for errors after the headers: the response announces a
        # random tag, and an exception is written as a block delimited by that tag, which the
        # clickhouse crate (0.15) recognises at the end of a chunk.
        tag = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(16))
        headers = self.common_headers()
        headers += [
            ("X-ClickHouse-Format", self.format_name),
            ("Content-Type", self.content_type()),
            ("X-ClickHouse-Exception-Tag", tag),
        ]
        if encoder.encoding:
            headers.append(("Content-Encoding", encoder.encoding))
        headers.append(("Transfer-Encoding", "chunked"))
        self.finish_body()
        self.headers_sent = True
        self.wire.send(self.wire.head_bytes(200, headers, self.keep_alive))
        for chunk in buffered:
            self.send_chunk(chunk)
        buffered.clear()
        try:
            for piece in pieces:
                self.send_chunk(encoder.piece(piece))
            self.send_chunk(encoder.finish())
        except ClickHouseError as exc:
            self.status = exc.status
            self.error_code = exc.code
            self.keep_alive = False
            message = (exc.text() + "\n").encode()
            block = (
                b"\r\n__exception__\r\n" + tag.encode() + b"\r\n" + message
                + f"{len(message)} {tag}\r\n__exception__\r\n".encode()
            )
            self.send_chunk(encoder.piece(block) + encoder.finish())
        self.finished()
        self.wire.send(b"0\r\n\r\n")

    def send_chunk(self, data: bytes) -> None:
        if data:
            self.wire.send(b"%x\r\n" % len(data) + data + b"\r\n")
            self.sent_bytes += len(data)

    def fail(self, exc: ClickHouseError) -> None:
        self.status = exc.status
        self.error_code = exc.code
        if self.headers_sent:
            # Only reachable for failures after a complete response; nothing more can be said.
            self.keep_alive = False
            return
        if exc.name == "READONLY" and self.request.method == "GET":
            exc = ClickHouseError(
                exc.code,
                exc.message + " For queries over HTTP, method GET implies readonly. "
                "You should use method POST for modifying queries",
                exc.name,
            )
        body = (exc.text() + "\n").encode()
        headers = self.common_headers() + [
            ("X-ClickHouse-Exception-Code", str(exc.code)),
            ("Content-Type", "text/plain; charset=UTF-8"),
            ("Content-Length", str(len(body))),
        ]
        self.finish_body()
        out = self.wire.head_bytes(exc.status, headers, self.keep_alive) + body
        self.headers_sent = True
        self.finished()
        self.wire.send(out)
        self.sent_bytes += len(out)
