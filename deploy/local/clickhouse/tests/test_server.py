import base64
import gzip
import http.client
import json
import struct
import threading
import time
import unittest
import uuid
from unittest import mock
from urllib.parse import quote

import zstandard

from chserver import framing
from tests import support


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.port = support.server().server_address[1]

    def connect(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def request(self, method="POST", path="/", body=b"", headers=None, conn=None):
        own = conn is None
        conn = conn or self.connect()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            if own:
                conn.close()

    def query(self, sql, path="/", **kwargs):
        return self.request(path=path, body=sql.encode(), **kwargs)

    def ok(self, sql, path="/", **kwargs):
        status, headers, data = self.query(sql, path, **kwargs)
        self.assertEqual(status, 200, data)
        return data

    def database(self):
        name = "t_" + uuid.uuid4().hex[:12]
        self.ok(f"CREATE DATABASE {name}")
        return name

    def test_native_compressed_response(self):
        plain = self.ok("SELECT number FROM numbers(100000)")
        status, _, framed = self.query("SELECT number FROM numbers(100000)", "/?compress=1")
        decoder = framing.BlockDecoder()
        self.assertEqual(b"".join(decoder.feed(framed)), plain)
        decoder.finish()

    def test_http_compression(self):
        plain = self.ok("SELECT number FROM numbers(100000)")
        _, headers, data = self.query("SELECT number FROM numbers(100000)", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(headers["Content-Encoding"], "gzip")
        self.assertEqual(gzip.decompress(data), plain)
        _, headers, data = self.query("SELECT number FROM numbers(100000)", headers={"Accept-Encoding": "zstd"})
        self.assertEqual(zstandard.ZstdDecompressor().decompressobj().decompress(data), plain)
        _, headers, data = self.query(
            "SELECT number FROM numbers(10)", "/?enable_http_compression=0", headers={"Accept-Encoding": "gzip"}
        )
        self.assertNotIn("Content-Encoding", headers)

    def test_compressed_request_bodies(self):
        db = self.database()
        self.ok(f"CREATE TABLE {db}.t (x UInt32) ENGINE = MergeTree ORDER BY x")
        rows = b"".join(struct.pack("<I", i) for i in range(100000))
        path = f"/?database={db}&decompress=1&query=" + quote("INSERT INTO t FORMAT RowBinary")
        framed = b"".join(framing.encode(rows, block_size=30000))
        self.assertEqual(self.request(path=path, body=framed)[0], 200)
        self.assertEqual(self.request(path=path, body=gzip.compress(framed), headers={"Content-Encoding": "gzip"})[0], 200)
        self.assertEqual(self.ok(f"SELECT count(), sum(x) FROM {db}.t"), b"200000\t%d\n" % (2 * sum(range(100000))))
        status, headers, data = self.request(path=path, body=b"x", headers={"Content-Encoding": "br"})
        self.assertEqual((status, headers["X-ClickHouse-Exception-Code"]), (501, "48"))

    def test_formats_that_cannot_stream_are_whole(self):
        data = json.loads(self.ok("SELECT number FROM numbers(300000) FORMAT JSON"))
        self.assertEqual(data["rows"], 300000)
        data = json.loads(self.ok("SELECT number FROM numbers(300000)", "/?default_format=JSONCompact"))
        self.assertEqual(len(data["data"]), 300000)

    def test_header_formats_stream_with_one_header(self):
        sql = "SELECT number, toString(number) AS s FROM numbers(500000)"
        plain = self.ok(sql, "/?default_format=RowBinary")
        _, headers, with_header = self.query(sql, "/?default_format=RowBinaryWithNamesAndTypes")
        self.assertEqual(headers.get("Transfer-Encoding"), "chunked")
        header = b"\x02\x06number\x01s\x06UInt64\x06String"
        self.assertEqual(with_header, header + plain)
        # A FORMAT clause decides, whatever the default format says.
        clause = self.ok(sql + " FORMAT RowBinary", "/?default_format=RowBinaryWithNamesAndTypes")
        self.assertEqual(clause, plain)
        clause = self.ok(sql + " FORMAT RowBinaryWithNamesAndTypes", "/?default_format=TabSeparated")
        self.assertEqual(clause, header + plain)
        empty = self.ok("SELECT number FROM numbers(0)", "/?default_format=RowBinaryWithNamesAndTypes")
        self.assertEqual(empty, b"\x01\x06number\x06UInt64")

    def test_wait_end_of_query_turns_late_errors_into_statuses(self):
        sql = "SELECT number, throwIf(number = 400000) FROM numbers(500000) SETTINGS max_block_size = 10000"
        status, headers, data = self.query(sql, "/?wait_end_of_query=1")
        self.assertEqual((status, headers["X-ClickHouse-Exception-Code"]), (500, "395"))
        _, headers, data = self.query("SELECT number FROM numbers(500000)", "/?wait_end_of_query=1")
        self.assertEqual(int(headers["Content-Length"]), len(data))
        self.assertEqual(len(data.splitlines()), 500000)

    def test_streamed_error_is_tagged(self):
        # The per-block sleep keeps the engine from reaching the error before the server has
        # streamed past its buffer, which would turn this into a plain error response.
        sql = (
            "SELECT number, throwIf(number = 400000, 'late') + sleep(0.002) FROM numbers(500000) "
            "SETTINGS max_block_size = 1000, max_threads = 1"
        )
        status, headers, data = self.query(sql)
        self.assertEqual(status, 200)
        tag = headers["X-ClickHouse-Exception-Tag"].encode()
        self.assertTrue(data.endswith(b" " + tag + b"\r\n__exception__\r\n"), data[-200:])
        self.assertIn(b"Code: 395. DB::Exception: late", data[-500:])

    def test_keep_alive_survives_errors(self):
        conn = self.connect()
        db = self.database()
        self.ok(f"CREATE TABLE {db}.t (x UInt8) ENGINE = Memory")
        for _ in range(3):
            self.assertEqual(self.query("SELECT 1", conn=conn)[2], b"1\n")
            self.assertEqual(self.query("SELEKT", conn=conn)[0], 400)
            bad_insert = f"/?database={db}&query=" + quote("INSERT INTO t FORMAT CSV")
            self.assertEqual(self.request(path=bad_insert, body=b"oops\n" * 10000, conn=conn)[0], 400)
        self.assertEqual(self.ok(f"SELECT count() FROM {db}.t"), b"0\n")
        conn.close()

    def test_multipart_parameters(self):
        boundary = "XyZ"
        parts = [("query", "SELECT {a:String} || {b:String}"), ("param_a", "x\\ty"), ("param_b", "é")]
        raw = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in parts)
        raw += f"--{boundary}--\r\n"
        status, _, data = self.request(
            body=raw.encode(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        self.assertEqual((status, data.decode()), (200, "x\\tyé\n"))

    def test_users(self):
        alice = {"X-ClickHouse-User": "alice", "X-ClickHouse-Key": "s3cret"}
        self.assertEqual(self.query("SELECT 1", headers=alice)[0], 200)
        self.assertEqual(self.query("SELECT 1", "/?user=alice&password=s3cret")[0], 200)
        basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
        self.assertEqual(self.query("SELECT 1", headers={"Authorization": basic})[0], 200)
        self.assertEqual(self.query("SELECT 1", "/?user=alice")[0], 403)
        status, headers, data = self.query("SELECT 1", "/?user=alice&password=s3cret", headers=alice)
        self.assertEqual((status, headers["X-ClickHouse-Exception-Code"]), (403, "516"))
        self.assertEqual(self.query("SELECT 1", headers={"Authorization": "Bearer x"})[0], 403)

    def test_requests_do_not_leak_state(self):
        db = self.database()
        self.ok("SET max_threads = 1")
        self.ok(f"USE {db}")
        self.assertEqual(self.ok("SELECT currentDatabase()"), b"default\n")
        self.assertNotEqual(self.ok("SELECT getSetting('max_threads')"), b"1\n")
        self.assertEqual(self.ok("SELECT currentDatabase()", f"/?database={db}"), db.encode() + b"\n")

    def test_get_is_read_only(self):
        status, headers, data = self.request("GET", "/?query=" + quote("CREATE DATABASE nope_" + uuid.uuid4().hex[:8]))
        self.assertEqual(headers["X-ClickHouse-Exception-Code"], "164")
        self.assertIn(b"method GET implies readonly", data)
        self.assertEqual(self.request("GET", "/?query=" + quote("SELECT 1"))[2], b"1\n")

    def test_duplicate_running_query_id(self):
        path = "/?query_id=dup-" + uuid.uuid4().hex
        results = []
        threads = [
            threading.Thread(target=lambda: results.append(self.query("SELECT sleep(2)", path)))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
            time.sleep(0.5)
        for thread in threads:
            thread.join()
        codes = sorted(headers.get("X-ClickHouse-Exception-Code", "") for _, headers, _ in results)
        self.assertEqual(codes, ["", "216"])
        self.assertEqual(self.query("SELECT 1", path)[0], 200)

    def test_query_id_is_free_once_the_answer_is_read(self):
        # ClickHouse frees a query's id before the client can have read the whole answer. A
        # slow release makes the order certain: the id must be free before the last byte goes
        # out, for an answer sent whole, one streamed in chunks, and an error.
        server = support.server()
        release = server.release_query_id

        def slow_release(query_id):
            time.sleep(0.3)
            release(query_id)

        big = f"SELECT number FROM numbers({4 << 20})"  # past the 1 MiB buffer: streamed
        with mock.patch.object(server, "release_query_id", slow_release):
            for sql, ok in (("SELECT 1", True), (big, True), ("SELECT no_such_column", False)):
                path = "/?query_id=reuse-" + uuid.uuid4().hex
                self.assertEqual(self.query(sql, path)[0] == 200, ok, sql)
                status, headers, data = self.query("SELECT 1", path)
                self.assertEqual(status, 200, (sql, headers.get("X-ClickHouse-Exception-Code"), data[:200]))

    def test_health_endpoints(self):
        self.assertEqual(self.request("GET", "/ping")[2], b"Ok.\n")
        self.assertEqual(self.request("GET", "/")[2], b"Ok.\n")
        status, headers, data = self.request("HEAD", "/ping")
        self.assertEqual((status, data), (200, b""))

    def test_empty_query(self):
        status, headers, _ = self.request(body=b"  ")
        self.assertEqual((status, headers["X-ClickHouse-Exception-Code"]), (400, "62"))


if __name__ == "__main__":
    unittest.main()
