"""The chDB side: one embedded ClickHouse, one short-lived session per HTTP request.

Measured with chdb-core 26.9.0: queries on one session run one at a time, but separate
sessions on the same path run in parallel (the GIL is released), each with its own current
database and settings, and opening one costs ~0.2 ms. A session per request therefore gives
real concurrency and the HTTP semantics for free: URL settings, ``USE`` and ``SET`` sent by a
client last exactly one request, as on a real server without ``session_id``.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

# The binding itself rather than chdb.session: the Session wrapper ends a stream at the first
# chunk without rows, which drops the header-only chunk of an empty RowBinaryWithNamesAndTypes
# result that clients with schema validation need.
from chdb import _chdb

from . import errors
from .errors import ClickHouseError

# Python-side conversions chDB offers under format names; a client must not reach them.
_PYTHON_ONLY_FORMATS = {"dataframe", "arrowtable", "datastore", "debug"}
_STREAMING_KEYWORDS = {"SELECT", "WITH", "("}
# chDB's streaming writes each block as a complete output of the format. That is the same
# byte stream for these formats, measured against a non-streamed run of the same query; for
# the others (JSON, Pretty, Parquet, ...) every block would repeat the prefix and suffix.
STREAMABLE_FORMATS = {
    "rowbinary", "tabseparated", "tsv", "tabseparatedraw", "tsvraw", "csv", "jsoneachrow",
    "jsoncompacteachrow", "jsonstringseachrow", "jsonlines", "ndjson", "native", "lineasstring",
    "tskv", "customseparated", "rawblob", "msgpack", "null",
}
# Block headers repeated on every chunk, which the server strips after the first one.
HEADER_FORMATS = {"rowbinarywithnamesandtypes": 2, "rowbinarywithnames": 1}


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Stats:
    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    result_rows: int = 0
    result_bytes: int = 0
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> Dict[str, str]:
        # ClickHouse sends every value as a JSON string.
        return {
            "read_rows": str(self.read_rows),
            "read_bytes": str(self.read_bytes),
            "written_rows": str(self.written_rows),
            "written_bytes": str(self.written_bytes),
            "total_rows_to_read": str(self.read_rows),
            "result_rows": str(self.result_rows),
            "result_bytes": str(self.result_bytes),
            "elapsed_ns": str(int((time.monotonic() - self.started) * 1e9)),
        }


class Engine:
    def __init__(self, data_dir: str):
        self.data_dir = os.path.abspath(data_dir)
        os.makedirs(self.data_dir, exist_ok=True)
        # Otherwise chDB installs its own SIGINT/SIGTERM handlers (re-installing them as
        # sessions open), and Ctrl-C or a stop request would never reach the server's own.
        _chdb.set_signal_handlers_enabled(0)
        # The first session starts the embedded server; keeping it open keeps the server up
        # between requests instead of restarting it whenever the last request session closes.
        self._anchor = _chdb.connect(self.data_dir)
        self._conn_str = self.data_dir + "?implicit_select=0"
        self._closed = False
        self._close_lock = threading.Lock()
        self.version = self._scalar("SELECT version()")
        self.timezone = self._scalar("SELECT timezone()")
        self.http_compression_default = self._scalar(
            "SELECT getSetting('enable_http_compression')"
        ).lower() in ("1", "true")
        errors.set_version(self.version)
        errors.load_names(self._error_names())

    def _scalar(self, sql: str) -> str:
        return self._anchor.query(sql, "TabSeparatedRaw").bytes().decode().strip()

    def _error_names(self) -> Dict[int, str]:
        rows = self._anchor.query(
            "SELECT number, errorCodeToName(number) AS name FROM numbers(2000) WHERE name != ''",
            "TabSeparatedRaw",
        ).bytes()
        names = {}
        for line in rows.decode().splitlines():
            code, name = line.split("\t")
            names[int(code)] = name
        return names

    def open(self) -> "RequestSession":
        if self._closed:
            raise ClickHouseError.of("ABORTED", "Server is shutting down")
        try:
            return RequestSession(_chdb.connect(self._conn_str))
        except Exception as exc:  # noqa: BLE001 - chDB raises plain RuntimeError
            raise errors.from_engine(exc) from None

    def close(self) -> None:
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._anchor.close()


class RequestSession:
    """One request's view of the engine; close() discards everything the request changed."""

    def __init__(self, conn):
        self._conn = conn
        self.stats = Stats()

    def close(self) -> None:
        try:
            self._conn.close()
        except Exception:  # noqa: BLE001 - nothing useful to do with a close failure
            pass

    def _run(self, sql: str, fmt: str = "TabSeparated", params: Optional[Dict[str, str]] = None):
        try:
            return self._conn.query(sql, fmt, params=params or {})
        except Exception as exc:  # noqa: BLE001
            raise errors.from_engine(exc) from None

    def use_database(self, database: str) -> None:
        self._run("USE " + quote_identifier(database))

    def apply_settings(self, settings: Dict[str, str]) -> None:
        if settings:
            assignments = ", ".join(f"{name} = {quote_string(value)}" for name, value in settings.items())
            self._run("SET " + assignments)

    def query(
        self,
        sql: str,
        fmt: str,
        params: Dict[str, str],
        first_keyword: str,
        output_format: Optional[str],
    ) -> Iterator[bytes]:
        """Runs ``sql`` with default format ``fmt`` and yields the result in pieces.

        ``output_format`` is the format the result will really be in (a FORMAT clause wins
        over ``fmt``), or None when the caller cannot tell; only then-known formats stream.
        Errors before the first piece raise ClickHouseError from the generator's first step;
        later ones raise mid-iteration, which the HTTP layer turns into an in-band exception.
        """
        if fmt.lower() in _PYTHON_ONLY_FORMATS:
            raise ClickHouseError.of("UNKNOWN_FORMAT", f"Unknown format {fmt}")
        known = (output_format or "").lower()
        streamable = known in STREAMABLE_FORMATS or known in HEADER_FORMATS
        if streamable and first_keyword in _STREAMING_KEYWORDS:
            try:
                handle = self._conn.send_query(sql, fmt, params=params)
            except Exception as exc:  # noqa: BLE001
                error = errors.from_engine(exc)
                if not _streaming_unsupported(error):
                    raise error from None
            else:
                return self._drain(handle, HEADER_FORMATS.get(known, 0))
        return self._whole(sql, fmt, params)

    def _drain(self, handle, header_lists: int) -> Iterator[bytes]:
        stats = self.stats
        header = None
        finished = False
        try:
            while True:
                try:
                    chunk = self._conn.streaming_fetch_result(handle)
                except Exception as exc:  # noqa: BLE001
                    finished = True
                    raise errors.from_engine(exc) from None
                if chunk is None or (chunk.rows_read() == 0 and chunk.size() == 0):
                    finished = True
                    return
                data = chunk.bytes()
                if header_lists:
                    if header is None:
                        header = data[: _names_header_length(data, header_lists)]
                    elif data.startswith(header):
                        data = data[len(header) :]
                    else:
                        raise ClickHouseError.of("LOGICAL_ERROR", "A result block does not start with the result header")
                stats.result_rows += chunk.rows_read()
                stats.result_bytes += len(data)
                stats.read_rows += chunk.storage_rows_read()
                stats.read_bytes += chunk.storage_bytes_read()
                if data:
                    yield data
        finally:
            if not finished:
                # A client that went away mid-stream must not leave the query running.
                try:
                    self._conn.streaming_cancel_query(handle)
                except Exception:  # noqa: BLE001
                    pass

    def _whole(self, sql: str, fmt: str, params: Dict[str, str]) -> Iterator[bytes]:
        result = self._run(sql, fmt, params)
        data = result.bytes()
        stats = self.stats
        stats.result_rows += result.rows_read()
        stats.result_bytes += len(data)
        stats.read_rows += result.storage_rows_read()
        stats.read_bytes += result.storage_bytes_read()
        stats.written_rows += result.rows_written()
        stats.written_bytes += result.bytes_written()

        def pieces() -> Iterator[bytes]:
            if data:
                yield data

        return pieces()

    def insert(self, statement: str, fmt: str) -> "InsertStream":
        if fmt.lower() in _PYTHON_ONLY_FORMATS:
            raise ClickHouseError.of("UNKNOWN_FORMAT", f"Unknown format {fmt}")
        try:
            inserter = self._conn.send_insert(statement, fmt)
        except Exception as exc:  # noqa: BLE001
            raise errors.from_engine(exc) from None
        return InsertStream(self._conn, inserter, self.stats)


def _read_varint(data: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ClickHouseError.of("LOGICAL_ERROR", "Truncated header in a RowBinaryWithNames result")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _names_header_length(data: bytes, lists: int) -> int:
    """Length of the column count and ``lists`` lists of names/types that open a block."""
    count, pos = _read_varint(data, 0)
    for _ in range(count * lists):
        length, pos = _read_varint(data, pos)
        pos += length
    if pos > len(data):
        raise ClickHouseError.of("LOGICAL_ERROR", "Truncated header in a RowBinaryWithNames result")
    return pos


def _streaming_unsupported(error: ClickHouseError) -> bool:
    return error.name == "BAD_ARGUMENTS" and "Streaming query is not supported" in error.message


class InsertStream:
    """Feeds request data to the engine as it arrives; nothing is committed before finish()."""

    # Engine calls have a fixed cost, and the crate sends 256 KiB blocks; batching to ~1 MiB
    # keeps that cost out of the profile without holding much memory.
    BATCH = 1 << 20

    def __init__(self, conn, inserter, stats: Stats):
        self._conn = conn
        self._inserter = inserter
        self._stats = stats
        self._pending: List[bytes] = []
        self._pending_size = 0
        self._done = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        try:
            self._conn.insert_append(self._inserter, data)
        except Exception as exc:  # noqa: BLE001
            self.cancel()
            raise errors.from_engine(exc) from None

    def finish(self) -> None:
        self._flush()
        self._done = True
        try:
            result = self._conn.insert_done(self._inserter)
        except Exception as exc:  # noqa: BLE001
            raise errors.from_engine(exc) from None
        self._stats.written_rows += result.rows_written()
        self._stats.written_bytes += result.bytes_written()

    def cancel(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._conn.insert_cancel(self._inserter)
        except Exception:  # noqa: BLE001 - the engine may already have dropped it
            pass
