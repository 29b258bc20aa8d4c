"""ClickHouse-shaped errors: code, name, message text and HTTP status.

Clients (the Rust `clickhouse` crate, clickhouse-connect, plain scripts) parse the body
``Code: N. DB::Exception: <message>. (NAME) (version X)`` and the
``X-ClickHouse-Exception-Code`` header, so both have to look exactly like the real server's.
"""

from __future__ import annotations

import re
from typing import Dict, Optional

# Codes the HTTP layer raises itself. Names come from the engine at startup when it can tell
# us (errorCodeToName); these are the fallback and the values the server code refers to.
CODES: Dict[str, int] = {
    "UNKNOWN_EXCEPTION": 1002,
    "CANNOT_READ_ALL_DATA": 33,
    "BAD_ARGUMENTS": 36,
    "CHECKSUM_DOESNT_MATCH": 40,
    "NOT_IMPLEMENTED": 48,
    "LOGICAL_ERROR": 49,
    "SYNTAX_ERROR": 62,
    "UNKNOWN_FORMAT": 73,
    "UNKNOWN_COMPRESSION_METHOD": 89,
    "TOO_LARGE_SIZE_COMPRESSED": 39,
    "UNKNOWN_SETTING": 115,
    "READONLY": 164,
    "QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING": 216,
    "CANNOT_DECOMPRESS": 271,
    "QUERY_IS_TOO_LARGE": 229,
    "UNKNOWN_USER": 192,
    "WRONG_PASSWORD": 193,
    "REQUIRED_PASSWORD": 194,
    "ABORTED": 236,
    "INCORRECT_DATA": 117,
    "UNKNOWN_TABLE": 60,
    "UNKNOWN_DATABASE": 81,
    "AUTHENTICATION_FAILED": 516,
    "HTTP_LENGTH_REQUIRED": 381,
    "ZLIB_INFLATE_FAILED": 354,
    "ZSTD_DECODER_FAILED": 561,
    "LZ4_DECODER_FAILED": 618,
    "UNSUPPORTED_METHOD": 1,
    "TIMEOUT_EXCEEDED": 159,
}

NAMES: Dict[int, str] = {code: name for name, code in CODES.items()}

# The real server's exceptionCodeToHTTPStatus, by error name so it survives renumbering.
_STATUS_BY_NAME: Dict[str, int] = {}
for _name in ("REQUIRED_PASSWORD",):
    _STATUS_BY_NAME[_name] = 401
for _name in ("UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE", "ACCESS_DENIED"):
    _STATUS_BY_NAME[_name] = 403
for _name in (
    "BAD_ARGUMENTS CANNOT_COMPILE_REGEXP CANNOT_PARSE_TEXT CANNOT_PARSE_ESCAPE_SEQUENCE "
    "CANNOT_PARSE_QUOTED_STRING CANNOT_PARSE_DATE CANNOT_PARSE_DATETIME CANNOT_PARSE_NUMBER "
    "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING CANNOT_PARSE_IPV4 CANNOT_PARSE_IPV6 "
    "CANNOT_PARSE_INPUT_ASSERTION_FAILED CANNOT_PARSE_UUID DUPLICATE_COLUMN ILLEGAL_COLUMN "
    "UNKNOWN_ELEMENT_IN_AST UNKNOWN_TYPE_OF_AST_NODE THERE_IS_NO_COLUMN TOO_DEEP_AST TOO_BIG_AST "
    "UNEXPECTED_AST_STRUCTURE SYNTAX_ERROR INCORRECT_DATA TYPE_MISMATCH "
    "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"
).split():
    _STATUS_BY_NAME[_name] = 400
for _name in (
    "UNKNOWN_TABLE UNKNOWN_FUNCTION UNKNOWN_IDENTIFIER UNKNOWN_TYPE UNKNOWN_STORAGE "
    "UNKNOWN_DATABASE UNKNOWN_SETTING UNKNOWN_DIRECTION_OF_SORTING UNKNOWN_AGGREGATE_FUNCTION "
    "UNKNOWN_FORMAT UNKNOWN_DATABASE_ENGINE UNKNOWN_TYPE_OF_QUERY UNKNOWN_ROLE"
).split():
    _STATUS_BY_NAME[_name] = 404
_STATUS_BY_NAME.update(
    {
        "QUERY_IS_TOO_LARGE": 413,
        "NOT_IMPLEMENTED": 501,
        "SOCKET_TIMEOUT": 503,
        "CANNOT_OPEN_FILE": 503,
        "HTTP_LENGTH_REQUIRED": 411,
        "TIMEOUT_EXCEEDED": 408,
        "CANNOT_SCHEDULE_TASK": 503,
        "UNSUPPORTED_MEDIA_TYPE": 415,
    }
)

VERSION = "26.9"  # replaced by the engine's version() at startup


def load_names(mapping: Dict[int, str]) -> None:
    """Adopts the engine's own code -> name table."""
    NAMES.update(mapping)
    for code, name in mapping.items():
        CODES[name] = code


def set_version(version: str) -> None:
    global VERSION
    VERSION = version


def http_status(code: int) -> int:
    return _STATUS_BY_NAME.get(NAMES.get(code, ""), 500)


class ClickHouseError(Exception):
    """An error reported to the client as ClickHouse would."""

    def __init__(self, code: int, message: str, name: Optional[str] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.name = name or NAMES.get(code, "UNKNOWN_EXCEPTION")

    @classmethod
    def of(cls, name: str, message: str) -> "ClickHouseError":
        code = CODES.get(name)
        if code is None:
            return cls(CODES["UNKNOWN_EXCEPTION"], message, "UNKNOWN_EXCEPTION")
        return cls(code, message, name)

    @property
    def status(self) -> int:
        return http_status(self.code)

    def text(self) -> str:
        """The full line a ClickHouse server sends, without the trailing newline."""
        message = self.message.rstrip()
        # ClickHouse joins message and name with ". " even when the message already ends with a
        # period, which is why its texts show "..": keep that so clients matching on it agree.
        return f"Code: {self.code}. DB::Exception: {message}. ({self.name}) (version {VERSION})"


_HEAD = re.compile(r"Code: (\d+)\. DB::Exception: ")
_NAME_TAIL = re.compile(r"\. \(([A-Z][A-Z0-9_]*)\)\s*$")
_VERSION_TAIL = re.compile(r"\s*\(version [^()]*(?:\([^()]*\))?\)\s*$")


def from_engine(exc: BaseException) -> ClickHouseError:
    """Turns a chDB exception into a ClickHouseError with the engine's code and message.

    chDB wraps messages (``Streaming query failed: ...``) and sometimes nests the same
    ``Code: N. DB::Exception:`` prefix and ``(NAME) (version ...)`` suffix several times;
    the client should see the message once, as the server would print it.
    """
    text = str(exc)
    head = _HEAD.search(text)
    if head is None:
        return ClickHouseError.of("UNKNOWN_EXCEPTION", text.strip() or type(exc).__name__)
    code = int(head.group(1))
    body = text[head.end() :]
    prefix = f"Code: {code}. DB::Exception: "
    while body.startswith(prefix):
        body = body[len(prefix) :]
    name = None
    while True:
        stripped = _VERSION_TAIL.sub("", body)
        match = _NAME_TAIL.search(stripped)
        if match is None or (name is not None and match.group(1) != name):
            body = stripped
            break
        name = match.group(1)
        body = stripped[: match.start()]
    return ClickHouseError(code, body.rstrip(), name)
