"""Request bodies: HTTP framing, Content-Encoding, ClickHouse block compression, multipart.

Everything is a generator of byte pieces so that a 1 GB INSERT flows through in constant
memory; only query text and multipart forms are ever held whole.
"""

from __future__ import annotations

import zlib
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import lz4.frame

from .errors import ClickHouseError
from .framing import BlockDecoder

try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None

READ_SIZE = 256 * 1024
MAX_CHUNK_LINE = 4096


class ClientGone(Exception):
    """The peer closed, reset or stalled the connection; there is nobody left to answer."""


class BadRequest(Exception):
    """Broken HTTP framing: answered with a bare 400 and the connection is closed."""


class BodyReader:
    """Reads the body of one request off the connection, exactly as far as it goes."""

    def __init__(self, rfile, headers: Dict[str, str]):
        self._rfile = rfile
        self.received = 0
        self.finished = False
        transfer = headers.get("transfer-encoding", "").strip().lower()
        length = headers.get("content-length")
        if transfer:
            if length is not None:
                # Both framings at once is how requests get smuggled: refuse it.
                raise BadRequest("both Transfer-Encoding and Content-Length")
            if transfer.split(",")[-1].strip() != "chunked":
                raise BadRequest(f"unsupported Transfer-Encoding {transfer!r}")
            self._mode = "chunked"
            self._remaining = 0
            self._need_crlf = False
        elif length is not None:
            if not length.strip().isdigit():
                raise BadRequest(f"bad Content-Length {length!r}")
            self._mode = "length"
            self._remaining = int(length)
            if self._remaining == 0:
                self.finished = True
        else:
            self._mode = "none"
            self._remaining = 0
            self.finished = True

    @property
    def empty(self) -> bool:
        return self._mode == "none" or (self._mode == "length" and self.received == 0 and self.finished)

    def _read_exact(self, n: int) -> bytes:
        try:
            data = self._rfile.read(n)
        except OSError as exc:
            raise ClientGone() from exc
        if len(data) < n:
            raise ClickHouseError.of(
                "CANNOT_READ_ALL_DATA",
                f"Cannot read all data. Bytes read: {len(data)}. Bytes expected: {n}: "
                "the client closed the connection before the end of the request body",
            )
        self.received += n
        return data

    def _readline(self) -> bytes:
        try:
            return self._rfile.readline(MAX_CHUNK_LINE)
        except OSError as exc:
            raise ClientGone() from exc

    def _chunk_size_line(self) -> int:
        line = self._readline()
        if not line:
            raise ClickHouseError.of(
                "CANNOT_READ_ALL_DATA",
                "Cannot read all data: the client closed the connection in the middle of a chunked body",
            )
        if not line.endswith(b"\n"):
            raise BadRequest("chunk size line too long")
        size_text = line.split(b";", 1)[0].strip()
        try:
            return int(size_text, 16)
        except ValueError:
            raise BadRequest(f"bad chunk size {size_text[:32]!r}") from None

    def pieces(self) -> Iterator[bytes]:
        """Raw body bytes, in pieces of at most READ_SIZE."""
        if self._mode == "length":
            while self._remaining > 0:
                n = min(self._remaining, READ_SIZE)
                data = self._read_exact(n)
                self._remaining -= n
                yield data
            self.finished = True
        elif self._mode == "chunked":
            # State lives on self, not in this generator, so that drain() can pick up wherever
            # an abandoned generator stopped.
            while not self.finished:
                if self._remaining == 0:
                    if self._need_crlf:
                        if self._readline() not in (b"\r\n", b"\n"):
                            raise BadRequest("chunk data not followed by CRLF")
                        self._need_crlf = False
                    size = self._chunk_size_line()
                    if size == 0:
                        self._read_trailers()
                        self.finished = True
                        return
                    self._remaining = size
                n = min(self._remaining, READ_SIZE)
                data = self._read_exact(n)
                self._remaining -= n
                self._need_crlf = self._remaining == 0
                yield data

    def _read_trailers(self) -> None:
        while True:
            line = self._readline()
            if not line:
                raise ClickHouseError.of(
                    "CANNOT_READ_ALL_DATA", "Cannot read all data: chunked body ends without its last line"
                )
            if line in (b"\r\n", b"\n"):
                return

    def drain(self, limit: int) -> bool:
        """Discards the rest of the body so the connection can serve another request.

        Returns False when the body is longer than ``limit`` or broken: then the connection
        has to be closed instead.
        """
        try:
            start = self.received
            for _ in self.pieces():
                if self.received - start > limit:
                    return False
            return True
        except (ClickHouseError, BadRequest, ClientGone):
            return False


def _zlib_decoder(wbits: int) -> Callable[[Iterator[bytes]], Iterator[bytes]]:
    def decode(pieces: Iterator[bytes]) -> Iterator[bytes]:
        decoder = zlib.decompressobj(wbits)
        try:
            for piece in pieces:
                while piece:
                    out = decoder.decompress(piece)
                    if out:
                        yield out
                    piece = b""
                    if decoder.eof:
                        # Concatenated gzip members form one stream.
                        piece = decoder.unused_data
                        decoder = zlib.decompressobj(wbits)
            tail = decoder.flush()
            if tail:
                yield tail
        except zlib.error as exc:
            raise ClickHouseError.of("ZLIB_INFLATE_FAILED", f"inflate failed: {exc}") from None

    return decode


def _lz4_decoder(pieces: Iterator[bytes]) -> Iterator[bytes]:
    decoder = lz4.frame.LZ4FrameDecompressor()
    started = False
    try:
        for piece in pieces:
            while piece:
                started = True
                out = decoder.decompress(piece)
                if out:
                    yield out
                piece = b""
                if decoder.eof:
                    piece = decoder.unused_data or b""
                    decoder = lz4.frame.LZ4FrameDecompressor()
                    started = bool(piece)
        if started and not decoder.eof:
            raise ClickHouseError.of("LZ4_DECODER_FAILED", "LZ4 frame is truncated")
    except RuntimeError as exc:
        raise ClickHouseError.of("LZ4_DECODER_FAILED", f"LZ4 decompression failed: {exc}") from None


def _zstd_decoder(pieces: Iterator[bytes]) -> Iterator[bytes]:
    decoder = zstandard.ZstdDecompressor().decompressobj()
    try:
        for piece in pieces:
            while piece:
                out = decoder.decompress(piece)
                if out:
                    yield out
                piece = b""
                if decoder.eof:
                    piece = decoder.unused_data
                    decoder = zstandard.ZstdDecompressor().decompressobj()
    except zstandard.ZstdError as exc:
        raise ClickHouseError.of("ZSTD_DECODER_FAILED", f"ZSTD decompression failed: {exc}") from None


def content_decoder(encoding: str) -> Optional[Callable[[Iterator[bytes]], Iterator[bytes]]]:
    """Decoder for a request's Content-Encoding; None means identity."""
    name = encoding.strip().lower()
    if name in ("", "identity", "none"):
        return None
    if name in ("gzip", "x-gzip", "deflate"):
        return _zlib_decoder(47)  # zlib or gzip header, detected per stream
    if name == "lz4":
        return _lz4_decoder
    if name == "zstd" and zstandard is not None:
        return _zstd_decoder
    raise ClickHouseError.of(
        "NOT_IMPLEMENTED",
        f"Unknown or unsupported Content-Encoding '{encoding}': this server accepts gzip, deflate, lz4 and zstd",
    )


def native_decoder(pieces: Iterator[bytes], verify_checksum: bool) -> Iterator[bytes]:
    decoder = BlockDecoder(verify_checksum)
    for piece in pieces:
        for block in decoder.feed(piece):
            yield block
    decoder.finish()


def parse_multipart(body: bytes, content_type: str) -> List[Tuple[str, Optional[str], bytes]]:
    """(name, filename, value) for each part of a multipart/form-data body."""
    boundary = None
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        raise ClickHouseError.of("BAD_ARGUMENTS", "multipart/form-data request without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    parts: List[Tuple[str, Optional[str], bytes]] = []
    pos = body.find(delimiter)
    if pos < 0:
        raise ClickHouseError.of("BAD_ARGUMENTS", "multipart/form-data body has no boundary line")
    pos += len(delimiter)
    while True:
        if body.startswith(b"--", pos):
            return parts
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            break
        headers_end = body.find(b"\r\n\r\n", line_end)
        if headers_end < 0:
            break
        next_delimiter = body.find(b"\r\n" + delimiter, headers_end + 4)
        if next_delimiter < 0:
            break
        name, filename = _content_disposition(body[line_end + 2 : headers_end])
        parts.append((name, filename, body[headers_end + 4 : next_delimiter]))
        pos = next_delimiter + 2 + len(delimiter)
    raise ClickHouseError.of("BAD_ARGUMENTS", "multipart/form-data body is truncated or malformed")


def _content_disposition(raw_headers: bytes) -> Tuple[str, Optional[str]]:
    name: Optional[str] = None
    filename: Optional[str] = None
    for line in raw_headers.decode("utf-8", "replace").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() != "content-disposition":
            continue
        for item in value.split(";")[1:]:
            k, _, v = item.strip().partition("=")
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1].replace('\\"', '"')
            if k.lower() == "name":
                name = v
            elif k.lower() == "filename":
                filename = v
    if name is None:
        raise ClickHouseError.of("BAD_ARGUMENTS", "multipart/form-data part without a name")
    return name, filename
