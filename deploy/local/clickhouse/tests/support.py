"""One in-process server for the whole test run: chDB allows a single data path per process."""

import atexit
import shutil
import tempfile
import threading

from chserver.config import Config
from chserver.engine import Engine
from chserver.handler import Server

_lock = threading.Lock()
_server = None

USERS = {"default": "", "alice": "s3cret"}


def server() -> Server:
    global _server
    with _lock:
        if _server is None:
            data_dir = tempfile.mkdtemp(prefix="chserver-test-")
            atexit.register(shutil.rmtree, data_dir, True)
            engine = Engine(data_dir)
            atexit.register(engine.close)
            config = Config(users=USERS, display_name="test", response_buffer_bytes=1 << 20, tmp_dir=data_dir)
            _server = Server(("127.0.0.1", 0), engine, config)
            threading.Thread(target=_server.serve_forever, daemon=True).start()
        return _server
