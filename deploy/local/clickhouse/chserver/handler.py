"""The HTTP/1.1 server: connection handling, auth, and the ClickHouse query protocol.

A hand-written HTTP layer rather than http.server because the protocol needs control that
http.server does not give: chunked request bodies read incrementally, request bodies drained
(or not) after an early error, long URLs, and chunked responses with in-band exceptions.
"""

from __future__ import annotations

import base64
import hmac
import http
import json
import logging
import re
import os
import secrets
import socket
import socketserver
import struct
import tempfile
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

import lz4.block
import lz4.frame

from . import framing, sql
from .body import BadRequest, BodyReader, ClientGone, content_decoder, native_decoder, parse_multipart
from .engine import Engine, RequestSession, Stats
from .errors import ClickHouseError

try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None

log = logging.getLogger("chserver")

MAX_REQUEST_LINE = 1 << 20  # ClickHouse's default http_max_uri_size
MAX_HEADER_LINE = 1 << 16
MAX_HEADERS = 1000
# Query text is held in memory; the engine's max_query_size (256 KiB by default) rejects far
# smaller queries with a proper error, this only stops a runaway body from exhausting memory.
MAX_QUERY_BYTES = 64 << 20
# How far into a body to look for the end of an `INSERT ... FORMAT x` statement.
MAX_INSERT_HEAD = 256 << 10

SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# URL parameters the HTTP handler consumes itself; every other one is a setting.
RESERVED_PARAMS = {
    "query",
    "database",
    "default_format",
    "query_id",
    "user",
    "password",
    "quota_key",
    "compress",
    "decompress",
    "session_id",
    "session_timeout",
    "session_check",
    "close_session",
    "stacktrace",
    "role",
    "buffer_size",
    "wait_end_of_query",
    "client_protocol_version",
}

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


@dataclass
class Config:
    users: Dict[str, str]
    display_name: str
    response_buffer_bytes: int = 8 << 20
    spool_memory_bytes: int = 64 << 20
    drain_limit_bytes: int = 256 << 20
    keep_alive_timeout: float = 10.0
    receive_timeout: float = 300.0
    tmp_dir: Optional[str] = None


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: Dict[str, str]
    path: str = ""
    params: List[Tuple[str, str]] = field(default_factory=list)

    def param(self, name: str) -> Optional[str]:
        found = None
        for key, value in self.params:
            if key == name:
                found = value
        return found

    def first_param(self, name: str) -> Optional[str]:
        for key, value in self.params:
            if key == name:
                return value
        return None


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    # On Linux this only allows reuse of TIME_WAIT ports: a port someone listens on still fails.
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: Tuple[str, int], engine: Engine, config: Config):
        self.engine = engine
        self.config = config
        self.stopping = False
        self._active = 0
        self._idle = threading.Condition()
        self._running_ids: set = set()
        self._ids_lock = threading.Lock()
        super().__init__(address, Handler)

    def request_started(self) -> None:
        with self._idle:
            self._active += 1

    def request_finished(self) -> None:
        with self._idle:
            self._active -= 1
            if self._active == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def claim_query_id(self, query_id: str) -> None:
        with self._ids_lock:
            if query_id in self._running_ids:
                raise ClickHouseError.of(
                    "QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING", f"Query with id = {query_id} is already running."
                )
            self._running_ids.add(query_id)

    def release_query_id(self, query_id: str) -> None:
        with self._ids_lock:
            self._running_ids.discard(query_id)


def _accepted_encodings(header: str) -> List[str]:
    names = []
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        quality = params.strip()
        if quality.replace(" ", "").lower() in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        if name:
            names.append(name.strip().lower())
    return names


class Lz4FrameWriter:
    """One LZ4 frame for a whole response, with a block boundary at every piece.

    Separate frames per piece would be simpler, but the clickhouse crate (0.15.3) misdecodes
    a second concatenated frame; real servers send one frame and flush at each write, so
    that is the shape to produce. Blocks are independent and up to 4 MiB.
    """

    BLOCK = 4 << 20
    _HEADER = lz4.frame.LZ4FrameCompressor(
        block_size=lz4.frame.BLOCKSIZE_MAX4MB, block_linked=False, content_checksum=False
    ).begin()
    _UNCOMPRESSED = 0x80000000

    def __init__(self) -> None:
        self._started = False

    def piece(self, data: bytes) -> bytes:
        out = [] if self._started else [self._HEADER]
        self._started = True
        view = memoryview(data)
        for offset in range(0, len(view), self.BLOCK):
            raw = view[offset : offset + self.BLOCK]
            packed = lz4.block.compress(raw, store_size=False)
            if len(packed) < len(raw):
                out += [struct.pack("<I", len(packed)), packed]
            else:
                out += [struct.pack("<I", len(raw) | self._UNCOMPRESSED), bytes(raw)]
        return b"".join(out)

    def finish(self) -> bytes:
        return (b"" if self._started else self._HEADER) + b"\0\0\0\0"


class BodyEncoder:
    """Response body transform: ClickHouse block framing, then HTTP Content-Encoding.

    Every piece ends on a compression unit boundary (an LZ4 block, a zstd block flush, a zlib
    sync flush), so a streamed response can stop after any piece and an in-band exception is
    decoded by the client as a chunk of its own.
    """

    def __init__(self, native: bool, encoding: Optional[str], level: int):
        self.native = native
        self.encoding = encoding
        self._zlib = None
        if encoding in ("gzip", "deflate"):
            self._zlib = zlib.compressobj(level, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
        self._zstd = zstandard.ZstdCompressor(level=level).compressobj() if encoding == "zstd" else None
        self._lz4 = Lz4FrameWriter() if encoding == "lz4" else None

    def piece(self, data: bytes) -> bytes:
        if self.native:
            data = b"".join(framing.encode(data))
        if self.encoding is None or not data:
            return data
        if self._lz4 is not None:
            return self._lz4.piece(data)
        if self._zstd is not None:
            return self._zstd.compress(data) + self._zstd.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        return self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        if self._lz4 is not None:
            return self._lz4.finish()
        if self._zstd is not None:
            return self._zstd.flush()
        if self._zlib is not None:
            return self._zlib.flush(zlib.Z_FINISH)
        return b""


class Handler(socketserver.StreamRequestHandler):
    rbufsize = 256 * 1024
    server: Server

    # ---- connection loop -------------------------------------------------------------

    def handle(self) -> None:
        config = self.server.config
        try:
            while not self.server.stopping:
                self.connection.settimeout(config.keep_alive_timeout)
                try:
                    line = self.rfile.readline(MAX_REQUEST_LINE + 1)
                except (socket.timeout, OSError):
                    return
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    continue  # tolerated between pipelined requests
                self.connection.settimeout(config.receive_timeout)
                self.server.request_started()
                try:
                    keep_alive = self.handle_one(line)
                finally:
                    self.server.request_finished()
                if not keep_alive:
                    return
        except (ClientGone, OSError):
            return

    def handle_one(self, line: bytes) -> bool:
        if len(line) > MAX_REQUEST_LINE:
            self.plain_response(414, "Request-URI Too Long\n", keep_alive=False)
            return False
        try:
            request = self.parse_head(line)
        except BadRequest as exc:
            self.plain_response(400, f"Bad Request: {exc}\n", keep_alive=False)
            return False
        keep_alive = self.wants_keep_alive(request)
        if request.path in ("/ping", "/replicas_status") and request.method in ("GET", "HEAD"):
            return self.ok_response(request, keep_alive)
        if request.method not in ("GET", "POST", "HEAD"):
            self.plain_response(405, f"HTTP method {request.method} is not supported\n", keep_alive=False)
            return False
        has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
        if request.path == "/" and request.method in ("GET", "HEAD") and request.param("query") is None:
            if not has_body or request.headers.get("content-length", "").strip() == "0":
                return self.ok_response(request, keep_alive)
        if request.method == "HEAD":
            self.plain_response(405, "HEAD is only supported for / and /ping\n", keep_alive=False)
            return False
        return QueryHandler(self, request).run() and keep_alive

    def parse_head(self, line: bytes) -> Request:
        try:
            text = line.decode("latin-1").rstrip("\r\n")
            method, target, version = text.split(" ")
        except ValueError:
            raise BadRequest("malformed request line") from None
        if not version.startswith("HTTP/1."):
            raise BadRequest(f"unsupported protocol {version[:16]!r}")
        headers: Dict[str, str] = {}
        for _ in range(MAX_HEADERS + 1):
            raw = self.rfile.readline(MAX_HEADER_LINE + 1)
            if not raw:
                raise ClientGone()
            if len(raw) > MAX_HEADER_LINE:
                raise BadRequest("header line too long")
            if raw in (b"\r\n", b"\n"):
                break
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise BadRequest("malformed header line")
            key = name.lower()
            value = value.strip()
            if key in ("content-length", "transfer-encoding") and key in headers:
                raise BadRequest(f"repeated {name} header")
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        else:
            raise BadRequest("too many headers")
        split = urlsplit(target)
        try:
            params = parse_qsl(split.query, keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("URL parameters are not valid UTF-8") from None
        return Request(method, target, version, headers, split.path or "/", params)

    @staticmethod
    def wants_keep_alive(request: Request) -> bool:
        connection = request.headers.get("connection", "").lower()
        if request.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection

    # ---- low-level responses ---------------------------------------------------------

    def send(self, data: bytes) -> None:
        try:
            self.connection.sendall(data)
        except OSError as exc:
            raise ClientGone() from exc

    def head_bytes(self, status: int, headers: List[Tuple[str, str]], keep_alive: bool) -> bytes:
        phrase = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else "Unknown"
        lines = [f"HTTP/1.1 {status} {phrase}", f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}"]
        if keep_alive:
            lines.append("Connection: Keep-Alive")
            lines.append(f"Keep-Alive: timeout={int(self.server.config.keep_alive_timeout)}")
        else:
            lines.append("Connection: Close")
        lines.extend(f"{name}: {value}" for name, value in headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def plain_response(self, status: int, text: str, keep_alive: bool, head_only: bool = False) -> None:
        body = text.encode()
        headers = [("Content-Type", "text/plain; charset=UTF-8"), ("Content-Length", str(len(body)))]
        self.send(self.head_bytes(status, headers, keep_alive) + (b"" if head_only else body))

    def ok_response(self, request: Request, keep_alive: bool) -> bool:
        # Health checks carry no body worth reading; a request that has one loses keep-alive.
        if "content-length" in request.headers or "transfer-encoding" in request.headers:
            keep_alive = False
        self.plain_response(200, "Ok.\n", keep_alive, head_only=request.method == "HEAD")
        return keep_alive


class QueryHandler:
    """One query request, from authentication to the last byte of the response."""

    def __init__(self, handler: Handler, request: Request):
        self.h = handler
        self.server = handler.server
        self.engine = handler.server.engine
        self.config = handler.server.config
        self.request = request
        self.started = time.monotonic()
        self.query_id = request.param("query_id") or str(uuid.uuid4())
        self.user = "default"
        self.session: Optional[RequestSession] = None
        self.result = None
        self.body: Optional[BodyReader] = None
        self.headers_sent = False
        self.status = 200
        self.error_code = 0
        self.sent_bytes = 0
        self.statement_head = ""
        self.keep_alive = True
        self.format_name = ""

    # ---- entry point -----------------------------------------------------------------

    def run(self) -> bool:
        claimed = False
        try:
            try:
                self.body = BodyReader(self.h.rfile, self.request.headers)
            except BadRequest as exc:
                self.status = 400
                self.h.plain_response(400, f"Bad Request: {exc}\n", keep_alive=False)
                return False
            if "100-continue" in self.request.headers.get("expect", "").lower() and not self.body.empty:
                self.h.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            try:
                self.authenticate()
                self.server.claim_query_id(self.query_id)
                claimed = True
                self.execute()
            except ClickHouseError as exc:
                self.fail(exc)
            except BadRequest as exc:
                self.status = 400
                if not self.headers_sent:
                    self.h.plain_response(400, f"Bad Request: {exc}\n", keep_alive=False)
                self.keep_alive = False
            except ClientGone:
                raise
            except Exception as exc:  # noqa: BLE001 - a bug must not kill the connection thread silently
                log.exception("internal error in query %s", self.query_id)
                self.fail(ClickHouseError.of("LOGICAL_ERROR", f"Internal error in the HTTP server: {exc!r}"))
            return self.keep_alive
        except ClientGone:
            self.status = self.status if self.status != 200 else 499
            self.keep_alive = False
            return False
        finally:
            if claimed:
                self.server.release_query_id(self.query_id)
            if self.result is not None:
                # Cancels a stream the client abandoned while its session is still open.
                self.result.close()
            if self.session is not None:
                self.session.close()
            self.log_line()

    def log_line(self) -> None:
        stats = self.session.stats if self.session is not None else None
        log.info(
            '%s "%s %s" user=%s query_id=%s status=%d code=%d duration_ms=%.1f received=%d sent=%d '
            "written_rows=%d result_rows=%d query=%r",
            self.h.client_address[0],
            self.request.method,
            self.request.path,
            self.user,
            self.query_id,
            self.status,
            self.error_code,
            (time.monotonic() - self.started) * 1000,
            self.body.received if self.body else 0,
            self.sent_bytes,
            stats.written_rows if stats else 0,
            stats.result_rows if stats else 0,
            self.statement_head,
        )

    # ---- authentication --------------------------------------------------------------

    def authenticate(self) -> None:
        headers = self.request.headers
        header_user = headers.get("x-clickhouse-user")
        header_key = headers.get("x-clickhouse-key")
        authorization = headers.get("authorization")
        param_user = self.request.param("user")
        param_password = self.request.param("password")
        using_headers = header_user is not None or header_key is not None
        using_params = param_user is not None or param_password is not None
        if using_headers and (authorization is not None or using_params):
            raise ClickHouseError.of(
                "AUTHENTICATION_FAILED",
                "Invalid authentication: it is not allowed to use X-ClickHouse HTTP headers "
                "and other authentication methods simultaneously",
            )
        if authorization is not None and using_params:
            raise ClickHouseError.of(
                "AUTHENTICATION_FAILED",
                "Invalid authentication: it is not allowed to use Authorization HTTP header "
                "and authentication via parameters simultaneously",
            )
        user, password = "default", ""
        if using_headers:
            user, password = header_user or "default", header_key or ""
        elif authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "basic":
                raise ClickHouseError.of(
                    "AUTHENTICATION_FAILED", f"Invalid authentication: '{scheme}' HTTP Authorization scheme is not supported"
                )
            try:
                decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise ClickHouseError.of("AUTHENTICATION_FAILED", "Invalid authentication: malformed Basic credentials") from None
            user, _, password = decoded.partition(":")
            user = user or "default"
        elif using_params:
            user, password = param_user or "default", param_password or ""
        self.user = user
        expected = self.config.users.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            raise ClickHouseError.of(
                "AUTHENTICATION_FAILED",
                f"{user}: Authentication failed: password is incorrect, or there is no user with such name.",
            )

    # ---- the query -------------------------------------------------------------------

    def execute(self) -> None:
        request = self.request
        pieces: Iterator[bytes] = self.body.pieces()
        decoder = content_decoder(request.headers.get("content-encoding", ""))
        if decoder is not None:
            pieces = decoder(pieces)

        if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            form = self.read_all(pieces, "multipart/form-data body")
            for name, filename, value in parse_multipart(form, request.headers["content-type"]):
                if filename is not None:
                    raise ClickHouseError.of(
                        "NOT_IMPLEMENTED", "External data (multipart file parts) is not supported by this server"
                    )
                try:
                    text = value.decode("utf-8")
                except UnicodeDecodeError:
                    raise ClickHouseError.of("BAD_ARGUMENTS", f"Form field '{name}' is not valid UTF-8") from None
                if name == "query" and request.first_param("query") is not None:
                    continue  # the URL's query wins, as in ClickHouse
                request.params.append((name, text))
            pieces = iter(())

        settings, query_params = self.split_params()
        if (request.param("session_id") or "") != "":
            raise ClickHouseError.of(
                "NOT_IMPLEMENTED", "HTTP sessions (session_id) are not supported by this server"
            )
        if request.param("decompress") in ("1", "true"):
            verify = settings.get("http_native_compression_disable_checksumming_on_decompress", "0") not in ("1", "true")
            pieces = native_decoder(pieces, verify)

        self.session = self.engine.open()
        database = request.param("database") or request.headers.get("x-clickhouse-database")
        if database:
            self.session.use_database(database)
        if request.method == "GET" and "readonly" not in settings:
            # ClickHouse makes every GET read-only so that links and prefetchers cannot write.
            settings = {"readonly": "2", **settings}
        self.session.apply_settings(settings)

        url_query = request.first_param("query") or ""
        if url_query:
            head = url_query.encode("utf-8") + b"\n"
            split = sql.split_insert(head, complete=True)
            if split is not None:
                self.statement_head = url_query[:200]
                self.run_insert(split, head[split.data_start :], pieces)
                return
            text = head + self.read_all(pieces, "query")
        else:
            head, split, pieces = self.read_statement_head(pieces)
            if split is not None:
                self.statement_head = head[: split.data_start].decode("utf-8", "replace")[:200]
                self.run_insert(split, head[split.data_start :], pieces)
                return
            text = head + self.read_all(pieces, "query")
        self.run_query(text, settings, query_params)

    def split_params(self) -> Tuple[Dict[str, str], Dict[str, str]]:
        settings: Dict[str, str] = {}
        query_params: Dict[str, str] = {}
        for name, value in self.request.params:
            if name.startswith("param_"):
                query_params[name[len("param_") :]] = value
            elif name not in RESERVED_PARAMS:
                if not SETTING_NAME.fullmatch(name):
                    raise ClickHouseError.of("UNKNOWN_SETTING", f"Unknown setting '{name}'")
                settings[name] = value
        return settings, query_params

    def read_all(self, pieces: Iterator[bytes], what: str) -> bytes:
        out = bytearray()
        for piece in pieces:
            out += piece
            if len(out) > MAX_QUERY_BYTES:
                self.keep_alive = False
                raise ClickHouseError.of(
                    "QUERY_IS_TOO_LARGE", f"The {what} is larger than {MAX_QUERY_BYTES} bytes"
                )
        return bytes(out)

    def read_statement_head(self, pieces: Iterator[bytes]):
        """Reads just enough of a body to know whether it starts with an INSERT and its data."""
        head = bytearray()
        for piece in pieces:
            head += piece
            try:
                return bytes(head), sql.split_insert(bytes(head), complete=False), pieces
            except sql.NeedMore:
                if len(head) > MAX_INSERT_HEAD:
                    return bytes(head), None, pieces
        return bytes(head), sql.split_insert(bytes(head), complete=True), pieces

    def run_insert(self, split: sql.InsertWithData, prefix: bytes, pieces: Iterator[bytes]) -> None:
        try:
            statement = split.statement.decode("utf-8")
        except UnicodeDecodeError:
            raise ClickHouseError.of("BAD_ARGUMENTS", "INSERT statement is not valid UTF-8") from None
        self.format_name = split.format
        insert = self.session.insert(statement, split.format)
        try:
            insert.write(prefix)
            for piece in pieces:
                insert.write(piece)
            insert.finish()
        except BaseException:
            insert.cancel()
            raise
        self.respond_ok(b"", content_type="text/plain; charset=UTF-8")

    def run_query(self, raw: bytes, settings: Dict[str, str], query_params: Dict[str, str]) -> None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ClickHouseError.of("BAD_ARGUMENTS", "Query is not valid UTF-8") from None
        self.statement_head = text[:200]
        if not text.strip():
            raise ClickHouseError.of("SYNTAX_ERROR", "Empty query")
        tail = sql.statement_tail_after_semicolon(raw)
        if tail is not None:
            snippet = raw[tail : tail + 40].decode("utf-8", "replace")
            raise ClickHouseError.of(
                "SYNTAX_ERROR",
                f"Syntax error (Multi-statements are not allowed): failed at position {tail + 1}: {snippet}",
            )
        default_format = (
            self.request.param("default_format")
            or self.request.headers.get("x-clickhouse-format")
            or "TabSeparated"
        )
        clause = sql.output_format(raw)
        self.format_name = clause or default_format
        # A FORMAT word the lexer could not pin down leaves the real format unknown.
        known_format = self.format_name if clause is not None or not sql.mentions_format(raw) else None
        pieces = self.session.query(text, default_format, query_params, sql.first_keyword(raw), known_format)
        self.result = pieces
        wait_end = self.request.param("wait_end_of_query") in ("1", "true") or settings.get(
            "http_wait_end_of_query", "0"
        ) in ("1", "true")
        self.stream_result(pieces, settings, wait_end)

    # ---- responses -------------------------------------------------------------------

    def encoder(self, settings: Dict[str, str]) -> BodyEncoder:
        native = self.request.param("compress") in ("1", "true")
        enabled = settings.get("enable_http_compression")
        use_http = self.engine.http_compression_default if enabled is None else enabled in ("1", "true")
        encoding = None
        if use_http:
            accepted = _accepted_encodings(self.request.headers.get("accept-encoding", ""))
            for candidate in ("lz4", "zstd", "gzip", "deflate"):
                if candidate in accepted and (candidate != "zstd" or zstandard is not None):
                    encoding = candidate
                    break
        try:
            level = int(settings.get("http_zlib_compression_level", "3"))
        except ValueError:
            level = 3
        return BodyEncoder(native, encoding, max(1, min(level, 9)))

    def common_headers(self) -> List[Tuple[str, str]]:
        stats = self.session.stats if self.session is not None else Stats()
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
        out = self.h.head_bytes(200, headers, self.keep_alive) + body
        self.headers_sent = True
        self.h.send(out)
        self.sent_bytes += len(out)

    def finish_body(self) -> None:
        """A request whose body was not read to the end cannot be followed by another."""
        if self.body is not None and not self.body.finished:
            if not self.body.drain(self.config.drain_limit_bytes):
                self.keep_alive = False

    def stream_result(self, pieces: Iterator[bytes], settings: Dict[str, str], wait_end: bool) -> None:
        encoder = self.encoder(settings)
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
            self.h.send(self.h.head_bytes(200, headers, self.keep_alive))
            while True:
                chunk = spool.read(1 << 20)
                if not chunk:
                    break
                self.h.send(chunk)
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
        self.h.send(self.h.head_bytes(200, headers, self.keep_alive))
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
        self.h.send(b"0\r\n\r\n")

    def send_chunk(self, data: bytes) -> None:
        if data:
            self.h.send(b"%x\r\n" % len(data) + data + b"\r\n")
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
        out = self.h.head_bytes(exc.status, headers, self.keep_alive) + body
        self.headers_sent = True
        self.h.send(out)
        self.sent_bytes += len(out)


def display_name() -> str:
    return os.environ.get("HOSTNAME") or socket.gethostname()
