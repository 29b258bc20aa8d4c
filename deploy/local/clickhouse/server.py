#!/usr/bin/env python3
"""ClickHouse HTTP interface for local development and CI, served by chDB (ClickHouse in-process).

    python server.py --listen 127.0.0.1:8123 --data-dir DIR [--log-file FILE]
                     [--user NAME:PASSWORD ...]

See README.md beside this file for what is supported.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from typing import Dict, List, Optional, Tuple

from chserver.config import Config, display_name
from chserver.handler import Server

log = logging.getLogger("chserver")

USERS_ENV = "AUDITLOG_CLICKHOUSE_USERS"


def parse_listen(value: str) -> Tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "127.0.0.1", int(port)


def parse_users(flags: List[str], env: Optional[str]) -> Dict[str, str]:
    users = {"default": ""}
    entries = [item for item in (env or "").split(",") if item.strip()] + list(flags)
    for entry in entries:
        name, sep, password = entry.strip().partition(":")
        if not sep or not name:
            raise ValueError(f"user {entry!r} is not NAME:PASSWORD")
        if name == "default":
            # Local tooling relies on `default` with no password; a second meaning would only confuse.
            raise ValueError("the default user always has an empty password; pick another name")
        users[name] = password
    return users


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="ClickHouse HTTP interface on top of chDB")
    parser.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 8123), help="HOST:PORT (default 127.0.0.1:8123)")
    parser.add_argument("--data-dir", required=True, help="directory that holds the databases")
    parser.add_argument("--log-file", help="append the request log here (default: stderr)")
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD", help=f"extra user; repeatable; also ${USERS_ENV}=a:pw,b:pw2")
    parser.add_argument("--display-name", default=display_name(), help="X-ClickHouse-Server-Display-Name (default: host name)")
    parser.add_argument("--response-buffer-mb", type=int, default=8, help="results up to this size are sent with a status that reflects errors (default 8)")
    parser.add_argument("--keep-alive-timeout", type=float, default=10.0, help="seconds an idle connection is kept (default 10)")
    parser.add_argument("--shutdown-timeout", type=float, default=60.0, help="seconds to let in-flight requests finish on SIGTERM (default 60)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        users = parse_users(args.user, os.environ.get(USERS_ENV))
    except ValueError as exc:
        print(f"clickhouse server: {exc}", file=sys.stderr)
        return 2

    handler: logging.Handler = logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(args.log_level)

    host, port = args.listen
    config = Config(
        users=users,
        display_name=args.display_name,
        response_buffer_bytes=max(1, args.response_buffer_mb) << 20,
        keep_alive_timeout=args.keep_alive_timeout,
        tmp_dir=os.path.join(os.path.abspath(args.data_dir), "tmp"),
    )
    # Bind before starting the engine: a taken port must fail fast, without touching the data.
    server_class = Server
    if ":" in host:
        server_class = type("Server6", (Server,), {"address_family": socket.AF_INET6})
    try:
        server = server_class((host, port), None, config)
    except OSError as exc:
        message = f"clickhouse server: cannot listen on {host}:{port}: {exc.strerror or exc}"
        print(message, file=sys.stderr)
        if args.log_file:
            log.error(message)
        return 1

    from chserver.engine import Engine  # imported late: loading chDB takes a moment

    try:
        os.makedirs(config.tmp_dir, exist_ok=True)
        engine = Engine(args.data_dir)
    except Exception as exc:  # noqa: BLE001 - any startup failure ends the process the same way
        message = f"clickhouse server: cannot start chDB in {args.data_dir}: {exc}"
        print(message, file=sys.stderr)
        if args.log_file:
            log.error(message)
        server.server_close()
        return 1
    server.engine = engine

    stop = threading.Event()
    # Installed after chDB starts, so that ours are the handlers in force.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="accept")
    serving.start()
    log.info(
        "listening on %s:%d, data in %s, ClickHouse %s via chDB, users: %s",
        host, port, engine.data_dir, engine.version, ", ".join(sorted(users)),
    )
    print(f"clickhouse server (chDB {engine.version}) listening on http://{host}:{port}", file=sys.stderr, flush=True)

    while not stop.wait(0.5):
        pass

    log.info("shutting down: no new connections, waiting for requests in flight")
    server.stopping = True
    server.shutdown()
    serving.join()
    server.server_close()
    if not server.wait_idle(args.shutdown_timeout):
        log.warning("requests still running after %.0fs; stopping anyway", args.shutdown_timeout)
    engine.close()
    log.info("stopped")
    logging.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
