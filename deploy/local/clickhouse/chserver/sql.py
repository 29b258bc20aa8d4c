"""Just enough of ClickHouse's lexer to split an HTTP request into a statement and its data.

ClickHouse reads the URL ``query`` parameter, a newline, and then the body as one stream: for
``INSERT ... FORMAT <fmt>`` the bytes after the format name are data, not SQL. The engine here
takes SQL as ``str`` and data through a separate streaming call, so the server has to find that
boundary itself. Everything works on ``bytes`` because the data part may be binary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

WORD_BYTES = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_" + bytes(range(0x80, 0x100))
)
SPACE_BYTES = frozenset(b" \t\n\r\f\v")


class NeedMore(Exception):
    """The buffer ends inside something that decides where the statement ends."""


@dataclass(frozen=True)
class Token:
    kind: str  # word, string, ident, punct, semicolon
    start: int
    end: int

    def text(self, buf: bytes) -> bytes:
        return buf[self.start : self.end]

    def is_word(self, buf: bytes, *words: bytes) -> bool:
        return self.kind == "word" and buf[self.start : self.end].upper() in words


def _skip_quoted(buf: bytes, pos: int, quote: int) -> int:
    """Returns the index after the closing quote; ``pos`` is just after the opening one."""
    n = len(buf)
    while pos < n:
        ch = buf[pos]
        if ch == 0x5C:  # backslash escapes the next byte in all quoted forms
            pos += 2
            continue
        if ch == quote:
            if pos + 1 < n and buf[pos + 1] == quote:  # doubled quote is a literal quote
                pos += 2
                continue
            return pos + 1
        pos += 1
    raise NeedMore


def tokens(buf: bytes, pos: int = 0, partial: bool = False) -> Iterator[Token]:
    """Significant tokens of ``buf`` (whitespace and comments skipped).

    Raises NeedMore when the buffer ends inside a string, a quoted identifier or a comment,
    and with ``partial`` also when it ends inside a word, which may go on in the next bytes.
    """
    n = len(buf)
    while pos < n:
        ch = buf[pos]
        if ch in SPACE_BYTES:
            pos += 1
        elif buf.startswith(b"--", pos) or (ch == 0x23 and buf[pos + 1 : pos + 2] in (b" ", b"!")):
            newline = buf.find(b"\n", pos)
            if newline < 0:
                raise NeedMore
            pos = newline + 1
        elif buf.startswith(b"/*", pos):
            # ClickHouse comments nest.
            depth, pos = 1, pos + 2
            while depth:
                if pos >= n:
                    raise NeedMore
                if buf.startswith(b"/*", pos):
                    depth, pos = depth + 1, pos + 2
                elif buf.startswith(b"*/", pos):
                    depth, pos = depth - 1, pos + 2
                else:
                    pos += 1
        elif ch == 0x27:  # '
            end = _skip_quoted(buf, pos + 1, ch)
            yield Token("string", pos, end)
            pos = end
        elif ch in (0x22, 0x60):  # " `
            end = _skip_quoted(buf, pos + 1, ch)
            yield Token("ident", pos, end)
            pos = end
        elif ch == 0x24:  # $tag$ heredoc $tag$, otherwise a lone punctuation byte
            end = pos + 1
            while end < n and buf[end] in WORD_BYTES:
                end += 1
            if end < n and buf[end] == 0x24:
                tag = buf[pos : end + 1]
                close = buf.find(tag, end + 1)
                if close < 0:
                    raise NeedMore
                yield Token("string", pos, close + len(tag))
                pos = close + len(tag)
            elif end >= n:
                raise NeedMore
            else:
                yield Token("punct", pos, pos + 1)
                pos += 1
        elif ch in WORD_BYTES:
            end = pos + 1
            while end < n and buf[end] in WORD_BYTES:
                end += 1
            if end >= n and partial:
                raise NeedMore
            yield Token("word", pos, end)
            pos = end
        elif ch == 0x3B:
            yield Token("semicolon", pos, pos + 1)
            pos += 1
        else:
            yield Token("punct", pos, pos + 1)
            pos += 1


@dataclass(frozen=True)
class InsertWithData:
    """An INSERT whose rows follow the statement in the same stream."""

    statement: bytes  # up to (not including) FORMAT/VALUES, as the engine's streaming insert wants
    format: str
    data_start: int  # offset in the buffer where the rows begin


def _data_start_after_format(buf: bytes, pos: int, complete: bool) -> int:
    # Data begins after the first newline following the format name, or after the spaces when
    # there is no newline: the same rule ClickHouse's INSERT parser applies.
    n = len(buf)
    while pos < n and buf[pos] in b" \t\f":
        pos += 1
    if pos >= n and not complete:
        raise NeedMore
    if pos < n and buf[pos] == 0x0D:
        pos += 1
    if pos >= n and not complete:
        raise NeedMore
    if pos < n and buf[pos] == 0x0A:
        pos += 1
    return pos


def split_insert(buf: bytes, complete: bool = True) -> Optional[InsertWithData]:
    """Finds where an ``INSERT ... FORMAT x`` / ``INSERT ... VALUES`` statement's data begins.

    Returns None for anything that is not an INSERT carrying inline data (SELECTs, DDL,
    ``INSERT ... SELECT``, ``INSERT ... FROM INFILE``), leaving that to the engine as plain SQL.
    With ``complete=False`` the buffer is a prefix of a longer stream, and NeedMore means the
    answer depends on bytes not seen yet.
    """
    try:
        return _split_insert(buf, complete)
    except NeedMore:
        if complete:
            return None
        raise


def _split_insert(buf: bytes, complete: bool) -> Optional[InsertWithData]:
    def ended() -> None:
        if not complete:
            raise NeedMore
        return None

    # The first word decides quickly for everything that is not an INSERT, even cut short.
    tok = next(tokens(buf), None)
    if tok is None:
        return ended()
    if tok.kind != "word" or not b"INSERT".startswith(tok.text(buf).upper()):
        return None
    if tok.end >= len(buf) or not tok.is_word(buf, b"INSERT"):
        return ended()
    it = tokens(buf, tok.end, partial=not complete)
    tok = next(it, None)
    if tok is None:
        return ended()
    if not tok.is_word(buf, b"INTO"):
        return None
    tok = next(it, None)
    if tok is not None and tok.is_word(buf, b"TABLE", b"FUNCTION"):
        # A table function's argument list is skipped by the depth tracking below.
        tok = next(it, None)
    if tok is None:
        return ended()
    tok = next(it, None)
    if tok is not None and tok.kind == "punct" and tok.text(buf) == b".":
        next(it, None)
        tok = next(it, None)

    depth = 0
    while tok is not None:
        text = tok.text(buf)
        if tok.kind == "punct" and text == b"(":
            depth += 1
        elif tok.kind == "punct" and text == b")":
            depth -= 1
        elif depth > 0:
            pass
        elif tok.kind == "semicolon" or tok.is_word(buf, b"SELECT", b"WITH", b"INFILE"):
            return None
        elif tok.is_word(buf, b"VALUES"):
            return InsertWithData(buf[: tok.start].rstrip(), "Values", tok.end)
        elif tok.is_word(buf, b"FORMAT"):
            name = next(it, None)
            if name is None or (name.end >= len(buf) and not complete):
                return ended()
            if name.kind == "word":
                fmt = name.text(buf)
            elif name.kind == "ident":
                fmt = name.text(buf)[1:-1]
            else:
                return None
            start = _data_start_after_format(buf, name.end, complete)
            return InsertWithData(buf[: tok.start].rstrip(), fmt.decode("utf-8", "replace"), start)
        tok = next(it, None)
    return ended()


def statement_tail_after_semicolon(buf: bytes) -> Optional[int]:
    """Offset of a second statement after a top-level ``;``, or None for a single statement."""
    try:
        seen_semicolon = False
        for tok in tokens(buf):
            if seen_semicolon:
                return tok.start
            if tok.kind == "semicolon":
                seen_semicolon = True
    except NeedMore:
        return None
    return None


def output_format(buf: bytes) -> Optional[str]:
    """The format named by a trailing ``FORMAT x`` clause of a non-INSERT statement, if any."""
    try:
        toks = list(tokens(buf))
    except NeedMore:
        return None
    depth = 0
    found = None
    for i, tok in enumerate(toks):
        text = tok.text(buf)
        if tok.kind == "punct" and text == b"(":
            depth += 1
        elif tok.kind == "punct" and text == b")":
            depth -= 1
        elif depth == 0 and tok.is_word(buf, b"FORMAT") and i + 1 < len(toks):
            name = toks[i + 1]
            after = toks[i + 2] if i + 2 < len(toks) else None
            # Guard against a column or alias called `format`: the clause ends the statement
            # or is followed only by SETTINGS.
            if name.kind in ("word", "ident") and (
                after is None or after.kind == "semicolon" or after.is_word(buf, b"SETTINGS")
            ):
                raw = name.text(buf)
                found = (raw[1:-1] if name.kind == "ident" else raw).decode("utf-8", "replace")
    return found


def mentions_format(buf: bytes) -> bool:
    """Whether a top-level FORMAT word appears anywhere (including ones output_format skips)."""
    depth = 0
    try:
        for tok in tokens(buf):
            text = tok.text(buf)
            if tok.kind == "punct" and text == b"(":
                depth += 1
            elif tok.kind == "punct" and text == b")":
                depth -= 1
            elif depth == 0 and tok.is_word(buf, b"FORMAT"):
                return True
    except NeedMore:
        return True
    return False


def first_keyword(buf: bytes) -> str:
    try:
        for tok in tokens(buf):
            return tok.text(buf).decode("utf-8", "replace").upper() if tok.kind == "word" else ""
    except NeedMore:
        pass
    return ""
