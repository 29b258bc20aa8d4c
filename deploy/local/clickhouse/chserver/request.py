"""The request head: parsing the request line and headers, and sorting URL parameters.

Kept apart from the connection loop so that what a request *is* (method, path, headers,
parameters, and which parameters are settings) can be read without the socket handling
around it; nothing here touches the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import BinaryIO, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

from .body import BadRequest, ClientGone
from .errors import ClickHouseError

MAX_REQUEST_LINE = 1 << 20  # ClickHouse's default http_max_uri_size
MAX_HEADER_LINE = 1 << 16
MAX_HEADERS = 1000

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


def parse_head(line: bytes, rfile: BinaryIO) -> Request:
    """Parses the request line already read and the header lines that follow it on `rfile`."""
    try:
        text = line.decode("latin-1").rstrip("\r\n")
        method, target, version = text.split(" ")
    except ValueError:
        raise BadRequest("malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise BadRequest(f"unsupported protocol {version[:16]!r}")
    headers: Dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        raw = rfile.readline(MAX_HEADER_LINE + 1)
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


def wants_keep_alive(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


def split_params(request: Request) -> Tuple[Dict[str, str], Dict[str, str]]:
    """Sorts the parameters into (settings, query parameters); reserved ones go in neither."""
    settings: Dict[str, str] = {}
    query_params: Dict[str, str] = {}
    for name, value in request.params:
        if name.startswith("param_"):
            query_params[name[len("param_") :]] = value
        elif name not in RESERVED_PARAMS:
            if not SETTING_NAME.fullmatch(name):
                raise ClickHouseError.of("UNKNOWN_SETTING", f"Unknown setting '{name}'")
            settings[name] = value
    return settings, query_params
