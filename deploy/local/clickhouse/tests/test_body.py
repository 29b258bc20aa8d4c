import gzip
import io
import unittest

import lz4.frame
import zstandard

from chserver import body
from chserver.errors import ClickHouseError


def reader(raw, **headers):
    return body.BodyReader(io.BufferedReader(io.BytesIO(raw)), {k.replace("_", "-"): v for k, v in headers.items()})


class BodyReaderTest(unittest.TestCase):
    def test_content_length(self):
        r = reader(b"hello world and more", content_length="11")
        self.assertEqual(b"".join(r.pieces()), b"hello world")
        self.assertTrue(r.finished)

    def test_chunked_with_extensions_and_trailers(self):
        r = reader(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT", transfer_encoding="chunked")
        self.assertEqual(b"".join(r.pieces()), b"hello world")
        self.assertTrue(r.finished)

    def test_drain_resumes_an_abandoned_read(self):
        r = reader(b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", transfer_encoding="chunked")
        it = r.pieces()
        self.assertEqual(next(it), b"abc")
        self.assertTrue(r.drain(1 << 20))
        self.assertTrue(r.finished)

    def test_truncated_and_malformed(self):
        with self.assertRaises(ClickHouseError):
            b"".join(reader(b"short", content_length="10").pieces())
        with self.assertRaises(ClickHouseError):
            b"".join(reader(b"5\r\nhel", transfer_encoding="chunked").pieces())
        with self.assertRaises(body.BadRequest):
            b"".join(reader(b"zz\r\n", transfer_encoding="chunked").pieces())
        with self.assertRaises(body.BadRequest):
            reader(b"", transfer_encoding="chunked", content_length="3")
        with self.assertRaises(body.BadRequest):
            reader(b"", content_length="-1")

    def test_no_body(self):
        self.assertTrue(reader(b"GET next").empty)


class DecodersTest(unittest.TestCase):
    data = b"audit event " * 10000

    def decode(self, encoding, payload, step=1000):
        pieces = (payload[i : i + step] for i in range(0, len(payload), step))
        return b"".join(body.content_decoder(encoding)(pieces))

    def test_round_trips(self):
        self.assertEqual(self.decode("gzip", gzip.compress(self.data)), self.data)
        self.assertEqual(self.decode("gzip", gzip.compress(self.data) + gzip.compress(b"!")), self.data + b"!")
        self.assertEqual(self.decode("deflate", __import__("zlib").compress(self.data)), self.data)
        self.assertEqual(self.decode("lz4", lz4.frame.compress(self.data) + lz4.frame.compress(b"!")), self.data + b"!")
        self.assertEqual(self.decode("zstd", zstandard.ZstdCompressor().compress(self.data)), self.data)
        self.assertIsNone(body.content_decoder("identity"))

    def test_errors(self):
        with self.assertRaises(ClickHouseError):
            self.decode("gzip", b"not gzip at all")
        with self.assertRaises(ClickHouseError):
            self.decode("lz4", lz4.frame.compress(self.data)[:-10])
        with self.assertRaises(ClickHouseError) as caught:
            body.content_decoder("br")
        self.assertEqual(caught.exception.name, "NOT_IMPLEMENTED")


class MultipartTest(unittest.TestCase):
    def test_fields(self):
        raw = (
            b"--b0undary\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\nSELECT {x:UInt8}\r\n"
            b"--b0undary\r\nContent-Disposition: form-data; name=\"param_x\"\r\n\r\n\r\n--\r\n"
            b"--b0undary\r\nContent-Disposition: form-data; name=\"t\"; filename=\"t.tsv\"\r\n"
            b"Content-Type: text/plain\r\n\r\n1\r\n--b0undary--\r\n"
        )
        parts = body.parse_multipart(raw, 'multipart/form-data; boundary="b0undary"')
        self.assertEqual(
            parts,
            [("query", None, b"SELECT {x:UInt8}"), ("param_x", None, b"\r\n--"), ("t", "t.tsv", b"1")],
        )

    def test_malformed(self):
        with self.assertRaises(ClickHouseError):
            body.parse_multipart(b"--b\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nno end", "multipart/form-data; boundary=b")
        with self.assertRaises(ClickHouseError):
            body.parse_multipart(b"", "multipart/form-data")


if __name__ == "__main__":
    unittest.main()
