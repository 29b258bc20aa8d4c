"""What the server is told at start-up: users, limits and timeouts.

Its own module because every layer reads it (the connection loop, the query handler, the
response writer) while it depends on nothing, so it can sit below all of them.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Dict, Optional


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


def display_name() -> str:
    return os.environ.get("HOSTNAME") or socket.gethostname()
