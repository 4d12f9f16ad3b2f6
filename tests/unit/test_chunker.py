"""The chunker: a byte stream cut into chunks of whole records, wherever the reads happen to end."""

from __future__ import annotations

import csv
import io
from typing import Any, BinaryIO, cast

import pytest

from tasks.convert import chunker
from tasks.convert.chunker import RecordTooLong, UnterminatedQuote, first_record, records

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


def chunks_of(data: bytes, chunk_bytes: int, **kwargs: Any) -> list[bytes]:
    return list(records(io.BytesIO(data), chunk_bytes, **kwargs))


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


# --- records() ------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 7, 11, 64, 1 << 20])
def test_chunks_end_on_record_boundaries_however_the_reads_fall(chunk_bytes: int) -> None:
    # GIVEN records whose quoted fields hold newlines and escaped quotes
    # WHEN cut with reads of every size (quotes and newlines fall across block edges)
    chunks = chunks_of(TRICKY, chunk_bytes)
    # THEN nothing is lost or duplicated, in order
    assert b"".join(chunks) == TRICKY
    # AND every chunk but the last ends with a newline, and parses on its own to whole records:
    # parsing the chunks one by one gives exactly the records of the whole input
    assert all(chunk.endswith(b"\n") for chunk in chunks[:-1])
    assert [row for chunk in chunks for row in parse(chunk)] == parse(TRICKY)


def test_small_reads_give_one_record_per_chunk() -> None:
    # GIVEN a one-byte read size: a chunk is cut at the first newline outside quotes
    chunks = chunks_of(b'a,1\nb,"x\ny"\n\nc,3', 1)
    # THEN each record (and the blank line) is its own chunk; quoted newlines never cut
    assert chunks == [b"a,1\n", b'b,"x\ny"\n', b"\n", b"c,3"]


def test_large_reads_give_few_chunks_of_about_the_read_size() -> None:
    data = b"".join(b'%d,"v\n%d"\n' % (i, i) for i in range(10_000))
    chunks = chunks_of(data, 4096)
    assert b"".join(chunks) == data
    assert all(len(chunk) <= 2 * 4096 for chunk in chunks)
    assert len(chunks) >= len(data) // (2 * 4096)


def test_a_record_longer_than_the_read_size_is_returned_whole() -> None:
    # GIVEN a quoted field of 10 kB with newlines inside, read 100 bytes at a time
    big = b'1,"' + b"line\n" * 2_000 + b'"\n'
    data = b"0,x\n" + big + b"2,y\n"
    chunks = chunks_of(data, 100)
    # THEN it is never cut: it comes out whole, at the start of a chunk
    assert chunks[0] == b"0,x\n"
    assert chunks[1].startswith(big)
    assert b"".join(chunks) == data


def test_a_record_longer_than_the_limit_is_refused() -> None:
    # GIVEN a quote that is never closed, followed by far more data than the record limit
    data = b'1,2\n3,"open\n' + b"4,5\n" * 1_000
    # THEN the chunker stops with RecordTooLong instead of buffering the rest of the file
    with pytest.raises(RecordTooLong, match="longer than 1000 bytes"):
        chunks_of(data, 64, max_record=1_000)


def test_default_record_limit_is_generous() -> None:
    assert chunker.MAX_RECORD_BYTES >= 16 * 1024 * 1024


@pytest.mark.parametrize("chunk_bytes", [1, 4, 1 << 20])
def test_unterminated_quote_at_end_of_stream(chunk_bytes: int) -> None:
    # GIVEN a last record whose quote never closes
    data = b'1,2\n3,"never closed\n4,5\n'
    # WHEN chunked THEN the complete records come first, then UnterminatedQuote
    produced: list[bytes] = []
    with pytest.raises(UnterminatedQuote, match="ends inside a quoted field"):
        for chunk in records(io.BytesIO(data), chunk_bytes):
            produced.append(chunk)
    assert b"".join(produced) == b"1,2\n"


def test_escaped_quotes_keep_the_parity() -> None:
    # GIVEN a field that is only escaped quotes and newlines
    data = b'"""\n""\n"""\nnext\n'
    # THEN its newlines are inside quotes: one record, then the next
    assert chunks_of(data, 1) == [b'"""\n""\n"""\n', b"next\n"]


def test_single_quote_character_can_be_configured() -> None:
    data = b"1,'a\nb'\n2,c\n"
    assert chunks_of(data, 1, quote=b"'") == [b"1,'a\nb'\n", b"2,c\n"]


def test_empty_stream_gives_no_chunks() -> None:
    assert chunks_of(b"", 10) == []


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
