#!/usr/bin/env python3
"""Prints a TCP port on 127.0.0.1 that nobody listens on, for a server about to start.

A port the kernel hands out for `bind(0)` comes from the ephemeral range, the same range it
takes the local ports of outgoing connections from: in the seconds between picking such a
port and a server binding it, a client's connection can take it (SeaweedFS's S3 gateway,
which binds last, once failed so). A port below that range is never taken that way, so the
pick is random among those and checked by binding it. Where the range leaves too little
room below it, the ephemeral pick is the fallback.
"""

import random
import socket


def free_port() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as ranges:
            low = int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    candidates = range(10000, low)
    for _ in range(100 if len(candidates) >= 1000 else 0):
        port = random.choice(candidates)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    print(free_port())
