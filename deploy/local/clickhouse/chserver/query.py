"""One query request, from authentication to the last byte of the response.

The ClickHouse part of the protocol: where the statement comes from (URL, body, multipart
form), how the body is decoded, whether it is an INSERT whose data streams into the engine
or a query whose result streams out. The HTTP connection it runs on (handler.py) and the way
its answer is written (response.py) are kept out of it.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, BinaryIO, Dict, Iterator, Optional, Protocol, Tuple

from . import auth, sql
from .body import BadRequest, BodyReader, ClientGone, content_decoder, native_decoder, parse_multipart
from .encoding import choose_encoder
from .engine import RequestSession
from .errors import ClickHouseError
from .request import Request, split_params
from .response import QueryResponse, Wire

log = logging.getLogger("chserver")

# Query text is held in memory; the engine's max_query_size (256 KiB by default) rejects far
# smaller queries with a proper error, this only stops a runaway body from exhausting memory.
MAX_QUERY_BYTES = 64 << 20
# How far into a body to look for the end of an `INSERT ... FORMAT x` statement.
MAX_INSERT_HEAD = 256 << 10


class Connection(Wire, Protocol):
    """What a query needs of the connection it arrived on (handler.Handler provides it)."""

    rfile: BinaryIO
    client_address: Tuple[str, int]
    server: Any  # handler.Server: engine, config, and the registry of running query ids

    def plain_response(self, status: int, text: str, keep_alive: bool, head_only: bool = False) -> None: ...


class QueryHandler:
    """One query request, from authentication to the last byte of the response."""

    def __init__(self, handler: Connection, request: Request):
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
        self.response = QueryResponse(handler, self.config, request, self.query_id)
        self.statement_head = ""

    # ---- entry point -----------------------------------------------------------------

    def run(self) -> bool:
        response = self.response
        try:
            try:
                self.body = response.body = BodyReader(self.h.rfile, self.request.headers)
            except BadRequest as exc:
                response.status = 400
                self.h.plain_response(400, f"Bad Request: {exc}\n", keep_alive=False)
                return False
            if "100-continue" in self.request.headers.get("expect", "").lower() and not self.body.empty:
                self.h.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            try:
                self.authenticate()
                self.server.claim_query_id(self.query_id)
                response.on_finished = lambda: self.server.release_query_id(self.query_id)
                self.execute()
            except ClickHouseError as exc:
                response.fail(exc)
            except BadRequest as exc:
                response.status = 400
                if not response.headers_sent:
                    self.h.plain_response(400, f"Bad Request: {exc}\n", keep_alive=False)
                response.keep_alive = False
            except ClientGone:
                raise
            except Exception as exc:  # noqa: BLE001 - a bug must not kill the connection thread silently
                log.exception("internal error in query %s", self.query_id)
                response.fail(ClickHouseError.of("LOGICAL_ERROR", f"Internal error in the HTTP server: {exc!r}"))
            return response.keep_alive
        except ClientGone:
            response.status = response.status if response.status != 200 else 499
            response.keep_alive = False
            return False
        finally:
            # The id is normally released just before the last bytes of the answer; this
            # covers answers that never reached them (a client gone, a 400 without a body).
            response.finished()
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
            self.response.status,
            self.response.error_code,
            (time.monotonic() - self.started) * 1000,
            self.body.received if self.body else 0,
            self.response.sent_bytes,
            stats.written_rows if stats else 0,
            stats.result_rows if stats else 0,
            self.statement_head,
        )

    def authenticate(self) -> None:
        user, password = auth.credentials(self.request)
        # Recorded before the check so that the log names who failed.
        self.user = user
        auth.check_password(self.config.users, user, password)

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

        settings, query_params = split_params(request)
        if (request.param("session_id") or "") != "":
            raise ClickHouseError.of(
                "NOT_IMPLEMENTED", "HTTP sessions (session_id) are not supported by this server"
            )
        if request.param("decompress") in ("1", "true"):
            verify = settings.get("http_native_compression_disable_checksumming_on_decompress", "0") not in ("1", "true")
            pieces = native_decoder(pieces, verify)

        self.session = self.engine.open()
        self.response.stats = self.session.stats
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

    def read_all(self, pieces: Iterator[bytes], what: str) -> bytes:
        out = bytearray()
        for piece in pieces:
            out += piece
            if len(out) > MAX_QUERY_BYTES:
                self.response.keep_alive = False
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
        self.response.format_name = split.format
        insert = self.session.insert(statement, split.format)
        try:
            insert.write(prefix)
            for piece in pieces:
                insert.write(piece)
            insert.finish()
        except BaseException:
            insert.cancel()
            raise
        self.response.respond_ok(b"", content_type="text/plain; charset=UTF-8")

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
        self.response.format_name = clause or default_format
        # A FORMAT word the lexer could not pin down leaves the real format unknown.
        known_format = self.response.format_name if clause is not None or not sql.mentions_format(raw) else None
        pieces = self.session.query(text, default_format, query_params, sql.first_keyword(raw), known_format)
        self.result = pieces
        wait_end = self.request.param("wait_end_of_query") in ("1", "true") or settings.get(
            "http_wait_end_of_query", "0"
        ) in ("1", "true")
        encoder = choose_encoder(self.request, settings, self.engine.http_compression_default)
        self.response.stream_result(pieces, encoder, wait_end)
