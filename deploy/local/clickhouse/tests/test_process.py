"""server.py as a process: start-up, port conflicts, and stopping on signals."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SERVER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server.py")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProcessTest(unittest.TestCase):
    def start(self, port, data_dir, *extra):
        proc = subprocess.Popen(
            [sys.executable, SERVER, "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return proc
            except OSError:
                if proc.poll() is not None:
                    self.fail(proc.stderr.read().decode())
                time.sleep(0.1)
        self.fail("server did not start")

    def post(self, port, sql):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/", body=sql.encode())
        response = conn.getresponse()
        return response.status, response.read()

    def test_signals_let_requests_in_flight_finish(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with tempfile.TemporaryDirectory() as data_dir:
                port = free_port()
                log_file = os.path.join(data_dir, "server.log")
                proc = self.start(port, data_dir, "--log-file", log_file)
                self.assertEqual(self.post(port, "SELECT 1"), (200, b"1\n"))
                result = {}
                slow = threading.Thread(target=lambda: result.update(r=self.post(port, "SELECT sleep(1.5)")))
                slow.start()
                time.sleep(0.5)
                proc.send_signal(sig)
                slow.join()
                self.assertEqual(result["r"], (200, b"0\n"), sig)
                self.assertEqual(proc.wait(timeout=30), 0, sig)
                with open(log_file) as log:
                    text = log.read()
                self.assertIn("shutting down", text)
                self.assertIn("status=200", text)

    def test_taken_port_is_refused(self):
        with socket.socket() as taken, tempfile.TemporaryDirectory() as data_dir:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            proc = subprocess.run(
                [sys.executable, SERVER, "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir],
                capture_output=True,
                timeout=60,
            )
            self.assertEqual(proc.returncode, 1)
            self.assertIn(b"cannot listen", proc.stderr)

    def test_bad_user_flags(self):
        with tempfile.TemporaryDirectory() as data_dir:
            for flag in ("nocolon", "default:pw"):
                proc = subprocess.run(
                    [sys.executable, SERVER, "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--user", flag],
                    capture_output=True,
                    timeout=60,
                )
                self.assertEqual(proc.returncode, 2, flag)


if __name__ == "__main__":
    unittest.main()
