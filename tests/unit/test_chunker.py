"""The header record, wherever the reads happen to end (the native core cuts the rest into chunks:
native/src/split.rs has those tests)."""

from __future__ import annotations

import io
from typing import Any, BinaryIO, cast

import pytest

from tasks.convert.chunker import UnterminatedQuote, first_record

# Quoted newlines (LF and CRLF), escaped quotes next to them, delimiters inside quotes, a blank
# line, and a last record without a newline: every kind of place a cut could go wrong.
TRICKY = (
    b'1,"a\nb",x\r\n'
    b'2,"""quoted""\nacross, lines""",y\n'
    b"\n"
    b'3,"",""""\n'
    b'4,"\n\n\n",z\r\n'
    b'5,"ends with a quote """,w'
)


class Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read (as network bodies may)."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(min(len(buffer), self._step))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# --- first_record() -------------------------------------------------------------------------


def test_first_record_splits_header_from_the_rest() -> None:
    header, rest = first_record(io.BytesIO(b"a,b\n1,2\n"))
    assert (header, rest) == (b"a,b", b"1,2\n")


def test_first_record_with_a_quoted_newline_in_the_header() -> None:
    # GIVEN a header whose second name holds a newline (and CRLF line ends)
    data = b'id,"long\r\nname"\r\n1,2\r\n'
    # WHEN the first record is read THEN the quoted newline stays, the line ending goes
    header, rest = first_record(io.BytesIO(data))
    assert header == b'id,"long\r\nname"'
    assert rest == b"1,2\r\n"


def test_first_record_from_a_trickling_stream() -> None:
    # GIVEN a stream that returns 3 bytes per read and a header with a quoted newline
    data = b'"a\nb",c\n1,2\n'
    header, rest = first_record(cast(BinaryIO, Trickle(data, 3)))
    # THEN the header is whole; the bytes read past it are handed back
    assert header == b'"a\nb",c'
    assert data.startswith(header + b"\n" + rest)


def test_first_record_without_a_newline() -> None:
    assert first_record(io.BytesIO(b"a,b\r\n")) == (b"a,b", b"")
    assert first_record(io.BytesIO(b"a,b")) == (b"a,b", b"")


def test_first_record_skips_blank_lines_before_the_header() -> None:
    assert first_record(io.BytesIO(b"\n\r\n\na,b\n1,2\n")) == (b"a,b", b"1,2\n")


@pytest.mark.parametrize("data", [b"", b"\n", b"\r\n\n"])
def test_first_record_of_an_empty_stream_is_empty(data: bytes) -> None:
    assert first_record(io.BytesIO(data)) == (b"", b"")


def test_first_record_reads_past_a_64k_block() -> None:
    # GIVEN a header longer than one read, then data
    header = b",".join(b"column_%d" % i for i in range(10_000))
    found, rest = first_record(io.BytesIO(header + b"\n1,2\n"))
    assert found == header
    assert rest == b"1,2\n"


def test_first_record_gives_up_on_a_header_that_never_ends() -> None:
    # GIVEN a quote opened in the header and never closed
    data = b'a,"b\n' + b"x" * 300_000
    # THEN no end is searched for past the limit
    with pytest.raises(UnterminatedQuote, match="first 100000 bytes"):
        first_record(io.BytesIO(data), limit=100_000)
