"""ClickHouse's compressed block framing (``decompress=1`` bodies, ``compress=1`` responses).

Each block is: 16-byte CityHash128 (v1.0.2) of everything after it, one method byte, u32 LE
size of header plus payload, u32 LE decompressed size, payload. It is ClickHouse's own format,
unrelated to HTTP Content-Encoding.
"""

from __future__ import annotations

import struct
from typing import Iterator, List

import lz4.block
from clickhouse_cityhash.cityhash import CityHash128

from .errors import ClickHouseError

try:  # zstd blocks are optional: only clients built with zstd send them
    import zstandard
except ImportError:  # pragma: no cover - requirements.txt installs it
    zstandard = None

METHOD_NONE = 0x02
METHOD_LZ4 = 0x82
METHOD_ZSTD = 0x90

CHECKSUM_SIZE = 16
HEADER_SIZE = 9
# The same ceiling as ClickHouse (DBMS_MAX_COMPRESSED_SIZE): anything larger is corruption,
# and trusting it would let one bad header make the server allocate gigabytes.
MAX_BLOCK_SIZE = 0x40000000

_HEADER = struct.Struct("<BII")


_MASK64 = (1 << 64) - 1
_CHECKSUM = struct.Struct("<QQ")


def checksum(data: bytes) -> bytes:
    # The binding packs CityHash's (low64, high64) pair into one int with low64 on top, while
    # the wire carries low64 then high64, each little-endian.
    value = CityHash128(data)
    return _CHECKSUM.pack(value >> 64, value & _MASK64)


def encode_block(data: bytes, method: int = METHOD_LZ4) -> bytes:
    if method == METHOD_LZ4:
        payload = lz4.block.compress(data, store_size=False)
    elif method == METHOD_NONE:
        payload = bytes(data)
    elif method == METHOD_ZSTD and zstandard is not None:
        payload = zstandard.ZstdCompressor().compress(data)
    else:
        raise ValueError(f"unsupported method 0x{method:02x}")
    header_and_payload = _HEADER.pack(method, HEADER_SIZE + len(payload), len(data)) + payload
    return checksum(header_and_payload) + header_and_payload


def encode(data: bytes, block_size: int = 1 << 20, method: int = METHOD_LZ4) -> Iterator[bytes]:
    """Frames ``data`` in blocks of at most ``block_size`` uncompressed bytes."""
    view = memoryview(data)
    for offset in range(0, len(view), block_size):
        yield encode_block(bytes(view[offset : offset + block_size]), method)


class BlockDecoder:
    """Incremental decoder: feed() arbitrary slices of the stream, get whole decoded blocks."""

    def __init__(self, verify_checksum: bool = True):
        self._buf = bytearray()
        self._verify = verify_checksum
        self.compressed_bytes = 0

    def feed(self, data: bytes) -> List[bytes]:
        self._buf += data
        out: List[bytes] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= CHECKSUM_SIZE + HEADER_SIZE:
            method, size_compressed, size_decompressed = _HEADER.unpack_from(buf, pos + CHECKSUM_SIZE)
            if size_compressed < HEADER_SIZE or size_compressed > MAX_BLOCK_SIZE:
                raise ClickHouseError.of(
                    "TOO_LARGE_SIZE_COMPRESSED",
                    f"Too large size_compressed_without_checksum: {size_compressed}. "
                    "Most likely corrupted data",
                )
            if size_decompressed > MAX_BLOCK_SIZE:
                raise ClickHouseError.of(
                    "TOO_LARGE_SIZE_COMPRESSED",
                    f"Too large size_decompressed: {size_decompressed}. Most likely corrupted data",
                )
            end = pos + CHECKSUM_SIZE + size_compressed
            if len(buf) < end:
                break
            block = bytes(buf[pos + CHECKSUM_SIZE : end])
            if self._verify:
                expected = bytes(buf[pos : pos + CHECKSUM_SIZE])
                actual = checksum(block)
                if actual != expected:
                    raise ClickHouseError.of(
                        "CHECKSUM_DOESNT_MATCH",
                        "Checksum doesn't match: corrupted data. "
                        f"Reference: {expected.hex()}. Actual: {actual.hex()}. "
                        f"Size of compressed block: {size_compressed}",
                    )
            out.append(_decompress(method, block[HEADER_SIZE:], size_decompressed))
            self.compressed_bytes += CHECKSUM_SIZE + size_compressed
            pos = end
        if pos:
            del buf[:pos]
        return out

    def finish(self) -> None:
        if self._buf:
            raise ClickHouseError.of(
                "CANNOT_READ_ALL_DATA",
                f"Cannot read all data in compressed stream: {len(self._buf)} trailing bytes "
                "do not form a complete block",
            )


def _decompress(method: int, payload: bytes, size: int) -> bytes:
    if method == METHOD_LZ4:
        try:
            data = lz4.block.decompress(payload, uncompressed_size=size)
        except lz4.block.LZ4BlockError as exc:
            raise ClickHouseError.of("CANNOT_DECOMPRESS", f"Cannot decompress LZ4-encoded data: {exc}")
    elif method == METHOD_NONE:
        data = payload
    elif method == METHOD_ZSTD and zstandard is not None:
        try:
            data = zstandard.ZstdDecompressor().decompress(payload, max_output_size=size)
        except zstandard.ZstdError as exc:
            raise ClickHouseError.of("CANNOT_DECOMPRESS", f"Cannot decompress ZSTD-encoded data: {exc}")
    else:
        raise ClickHouseError.of(
            "UNKNOWN_COMPRESSION_METHOD", f"Unknown compression method: 0x{method:02x}"
        )
    if len(data) != size:
        raise ClickHouseError.of(
            "CANNOT_DECOMPRESS",
            f"Decompressed size {len(data)} differs from the size in the block header {size}",
        )
    return data
