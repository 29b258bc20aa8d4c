"""The HTTP/1.1 server: accepting connections, the per-connection request loop, and dispatch.

A hand-written HTTP layer rather than http.server because the protocol needs control that
http.server does not give: chunked request bodies read incrementally, request bodies drained
(or not) after an early error, long URLs, and chunked responses with in-band exceptions.

This module only reads request heads, answers what needs no engine (health checks, protocol
errors) and hands queries to query.py; the server keeps what spans requests (requests in
flight for a graceful stop, the ids of running queries).
"""

from __future__ import annotations

import http
import socket
import socketserver
import threading
import time
from typing import List, Tuple

from .body import BadRequest, ClientGone
from .config import Config
from .engine import Engine
from .errors import ClickHouseError
from .query import QueryHandler
from .request import MAX_REQUEST_LINE, Request, parse_head, wants_keep_alive


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
            request = parse_head(line, self.rfile)
        except BadRequest as exc:
            self.plain_response(400, f"Bad Request: {exc}\n", keep_alive=False)
            return False
        keep_alive = wants_keep_alive(request)
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
