"""Response bodies on the wire: ClickHouse block framing, then HTTP Content-Encoding.

The counterpart of body.py (which undoes both on request bodies). Apart from the response
writer because it only transforms bytes: it knows nothing of status lines or sockets, and
how each codec is flushed is the delicate part worth reading on its own.
"""

from __future__ import annotations

import struct
import zlib
from typing import Dict, List, Optional

import lz4.block
import lz4.frame

from . import framing
from .request import Request

try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None


def accepted_encodings(header: str) -> List[str]:
    names = []
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        quality = params.strip()
        if quality.replace(" ", "").lower() in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        if name:
            names.append(name.strip().lower())
    return names


class Lz4FrameWriter:
    """One LZ4 frame for a whole response, with a block boundary at every piece.

    Separate frames per piece would be simpler, but the clickhouse crate (0.15.3) misdecodes
    a second concatenated frame; real servers send one frame and flush at each write, so
    that is the shape to produce. Blocks are independent and up to 4 MiB.
    """

    BLOCK = 4 << 20
    _HEADER = lz4.frame.LZ4FrameCompressor(
        block_size=lz4.frame.BLOCKSIZE_MAX4MB, block_linked=False, content_checksum=False
    ).begin()
    _UNCOMPRESSED = 0x80000000

    def __init__(self) -> None:
        self._started = False

    def piece(self, data: bytes) -> bytes:
        out = [] if self._started else [self._HEADER]
        self._started = True
        view = memoryview(data)
        for offset in range(0, len(view), self.BLOCK):
            raw = view[offset : offset + self.BLOCK]
            packed = lz4.block.compress(raw, store_size=False)
            if len(packed) < len(raw):
                out += [struct.pack("<I", len(packed)), packed]
            else:
                out += [struct.pack("<I", len(raw) | self._UNCOMPRESSED), bytes(raw)]
        return b"".join(out)

    def finish(self) -> bytes:
        return (b"" if self._started else self._HEADER) + b"\0\0\0\0"


class BodyEncoder:
    """Response body transform: ClickHouse block framing, then HTTP Content-Encoding.

    Every piece ends on a compression unit boundary (an LZ4 block, a zstd block flush, a zlib
    sync flush), so a streamed response can stop after any piece and an in-band exception is
    decoded by the client as a chunk of its own.
    """

    def __init__(self, native: bool, encoding: Optional[str], level: int):
        self.native = native
        self.encoding = encoding
        self._zlib = None
        if encoding in ("gzip", "deflate"):
            self._zlib = zlib.compressobj(level, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
        self._zstd = zstandard.ZstdCompressor(level=level).compressobj() if encoding == "zstd" else None
        self._lz4 = Lz4FrameWriter() if encoding == "lz4" else None

    def piece(self, data: bytes) -> bytes:
        if self.native:
            data = b"".join(framing.encode(data))
        if self.encoding is None or not data:
            return data
        if self._lz4 is not None:
            return self._lz4.piece(data)
        if self._zstd is not None:
            return self._zstd.compress(data) + self._zstd.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        return self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        if self._lz4 is not None:
            return self._lz4.finish()
        if self._zstd is not None:
            return self._zstd.flush()
        if self._zlib is not None:
            return self._zlib.flush(zlib.Z_FINISH)
        return b""


def choose_encoder(request: Request, settings: Dict[str, str], http_compression_default: bool) -> BodyEncoder:
    """The encoder a request asks for: `compress=1` framing, and the first accepted encoding
    when HTTP compression is on (`enable_http_compression`, else the engine's default)."""
    native = request.param("compress") in ("1", "true")
    enabled = settings.get("enable_http_compression")
    use_http = http_compression_default if enabled is None else enabled in ("1", "true")
    encoding = None
    if use_http:
        accepted = accepted_encodings(request.headers.get("accept-encoding", ""))
        for candidate in ("lz4", "zstd", "gzip", "deflate"):
            if candidate in accepted and (candidate != "zstd" or zstandard is not None):
                encoding = candidate
                break
    try:
        level = int(settings.get("http_zlib_compression_level", "3"))
    except ValueError:
        level = 3
    return BodyEncoder(native, encoding, max(1, min(level, 9)))
