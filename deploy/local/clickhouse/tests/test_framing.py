import struct
import unittest

from chserver import framing
from chserver.errors import ClickHouseError


class FramingTest(unittest.TestCase):
    def test_round_trip_in_arbitrary_slices(self):
        data = bytes(range(256)) * 5000 + b"tail"
        stream = b"".join(framing.encode(data, block_size=100_000))
        for step in (1, 7, 4096, len(stream)):
            decoder = framing.BlockDecoder()
            out = []
            for offset in range(0, len(stream), step):
                out += decoder.feed(stream[offset : offset + step])
            decoder.finish()
            self.assertEqual(b"".join(out), data, step)

    def test_block_layout(self):
        block = framing.encode_block(b"hello hello hello")
        method, size, raw_size = struct.unpack_from("<BII", block, 16)
        self.assertEqual((method, size, raw_size), (0x82, len(block) - 16, 17))
        self.assertEqual(block[:16], framing.checksum(block[16:]))

    def test_none_and_zstd_methods(self):
        for method in (framing.METHOD_NONE, framing.METHOD_ZSTD):
            decoder = framing.BlockDecoder()
            self.assertEqual(decoder.feed(framing.encode_block(b"abc" * 100, method)), [b"abc" * 100])

    def corrupt(self, block, index):
        broken = bytearray(block)
        broken[index] ^= 0xFF
        return bytes(broken)

    def assert_error(self, stream, name, finish=False):
        decoder = framing.BlockDecoder()
        with self.assertRaises(ClickHouseError) as caught:
            decoder.feed(stream)
            if finish:
                decoder.finish()
        self.assertEqual(caught.exception.name, name)

    def test_corruption_is_detected(self):
        block = framing.encode_block(b"some data to protect" * 10)
        self.assert_error(self.corrupt(block, 0), "CHECKSUM_DOESNT_MATCH")
        self.assert_error(self.corrupt(block, len(block) - 1), "CHECKSUM_DOESNT_MATCH")
        self.assert_error(block[:-1], "CANNOT_READ_ALL_DATA", finish=True)

    def test_checksum_can_be_disabled(self):
        block = self.corrupt(framing.encode_block(b"x" * 50), 3)
        self.assertEqual(framing.BlockDecoder(verify_checksum=False).feed(block), [b"x" * 50])

    def frame(self, method, payload, raw_size):
        body = struct.pack("<BII", method, 9 + len(payload), raw_size) + payload
        return framing.checksum(body) + body

    def test_bad_headers_and_payloads(self):
        self.assert_error(self.frame(0x42, b"??", 2), "UNKNOWN_COMPRESSION_METHOD")
        self.assert_error(self.frame(0x82, b"\xff\xff\xff", 100), "CANNOT_DECOMPRESS")
        self.assert_error(self.frame(0x02, b"abc", 4), "CANNOT_DECOMPRESS")
        huge = b"\0" * 16 + struct.pack("<BII", 0x82, 0xFFFFFFFF, 1)
        self.assert_error(huge, "TOO_LARGE_SIZE_COMPRESSED")
        tiny = b"\0" * 16 + struct.pack("<BII", 0x82, 3, 1)
        self.assert_error(tiny, "TOO_LARGE_SIZE_COMPRESSED")


if __name__ == "__main__":
    unittest.main()
