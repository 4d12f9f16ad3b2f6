"""The conversion engine: CSV/TSV (optionally gzip) -> JSON Lines, streamed, values kept as text."""

from __future__ import annotations

import gzip
import io
import json
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import pytest

from tasks.convert.engine import BLOCK_BYTES, convert_stream
from tasks.errors import MalformedContent
from tasks.models import Compression, FileSpec, InputFormat, ObjectRef


def spec(fmt: InputFormat = "csv", compression: Compression = "none") -> FileSpec:
    return FileSpec(
        ref=ObjectRef(bucket="staging", key="in/x", size=0), format=fmt, compression=compression
    )


def convert(
    data: bytes, fmt: InputFormat = "csv", compression: Compression = "none"
) -> tuple[int, bytes]:
    blocks: list[bytes] = []
    rows = convert_stream(io.BytesIO(data), spec(fmt, compression), blocks.append)
    return rows, b"".join(blocks)


def records(output: bytes) -> list[dict[str, Any]]:
    assert output == b"" or output.endswith(b"\n")
    return [json.loads(line) for line in output.split(b"\n")[:-1]]


class ChunkStream(io.RawIOBase):
    """A read-only stream over generated chunks: the whole input never exists in memory."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            self._pending = next(self._chunks, b"")  # generators below never yield b"" early
            if not self._pending:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        self.bytes_read += size
        return size


def generated_csv(rows: int) -> Iterator[bytes]:
    """``rows`` rows of ~1 KB each, in chunks of 64 rows."""
    yield b"id,name,comment\n"
    padding = b"x" * 1000
    for start in range(0, rows, 64):
        yield b"".join(
            b'%d,name %d,"quoted, %s"\n' % (i, i, padding) for i in range(start, start + 64)
        )


def gzipped(chunks: Iterator[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    for chunk in chunks:
        if compressed := compressor.compress(chunk):
            yield compressed
    yield compressor.flush()


# --- happy paths ----------------------------------------------------------------------------


def test_simple_csv_becomes_exact_json_lines() -> None:
    # GIVEN a header and two rows
    data = b"id,name\n1,alpha\n2,beta\n"
    # WHEN converted
    rows, out = convert(data)
    # THEN one object per row, header names as keys in header order, values as text
    assert rows == 2
    assert out == b'{"id":"1","name":"alpha"}\n{"id":"2","name":"beta"}\n'


def test_quoted_fields_keep_delimiters_escaped_quotes_and_newlines() -> None:
    # GIVEN quoted fields with a comma, a doubled quote and an embedded newline
    data = b'id,text\n1,"a, b"\n2,"she said ""hi"""\n3,"line one\nline two"\n'
    # WHEN converted
    rows, out = convert(data)
    # THEN the values are unquoted exactly once
    assert rows == 3
    assert records(out) == [
        {"id": "1", "text": "a, b"},
        {"id": "2", "text": 'she said "hi"'},
        {"id": "3", "text": "line one\nline two"},
    ]


def test_crlf_line_endings_do_not_leak_into_values() -> None:
    # GIVEN a CRLF file whose quoted field also holds a CRLF
    data = b'a,b\r\n1,2\r\n3,"x\r\ny"\r\n'
    # WHEN converted
    rows, out = convert(data)
    # THEN row ends are removed, the quoted CRLF is kept as written
    assert rows == 2
    assert records(out) == [{"a": "1", "b": "2"}, {"a": "3", "b": "x\r\ny"}]


def test_utf8_bom_is_stripped_from_first_header_name() -> None:
    # GIVEN a file starting with a UTF-8 byte order mark
    data = "\ufeffid,name\n1,a\n".encode()
    # WHEN converted
    _, out = convert(data)
    # THEN the first key is "id", not "\ufeffid"
    assert records(out) == [{"id": "1", "name": "a"}]


def test_empty_fields_stay_empty_strings_and_whitespace_is_kept() -> None:
    # GIVEN empty fields (middle, last, quoted) and values with surrounding spaces
    data = b'a,b,c\n,,\n1,"",\n x , y ,"  "\n'
    # WHEN converted
    _, out = convert(data)
    # THEN nothing becomes null and nothing is trimmed
    assert records(out) == [
        {"a": "", "b": "", "c": ""},
        {"a": "1", "b": "", "c": ""},
        {"a": " x ", "b": " y ", "c": "  "},
    ]


def test_field_holding_json_stays_a_string() -> None:
    # GIVEN a field whose text is itself JSON
    data = b'id,payload\n1,"{""k"": [1, 2], ""s"": ""v""}"\n'
    # WHEN converted
    _, out = convert(data)
    # THEN it is kept as a string (no parsing, no type inference)
    assert records(out) == [{"id": "1", "payload": '{"k": [1, 2], "s": "v"}'}]


def test_numbers_and_dates_are_not_typed() -> None:
    # GIVEN values that look like numbers, booleans and timestamps
    data = b"n,f,b,t\n007,1.50,true,2024-01-01T00:00:00Z\n"
    # WHEN converted
    _, out = convert(data)
    # THEN they are written exactly as in the file
    assert out == b'{"n":"007","f":"1.50","b":"true","t":"2024-01-01T00:00:00Z"}\n'


def test_non_ascii_is_written_as_utf8_not_escaped() -> None:
    # GIVEN non-ASCII header names and values
    data = "città,emoji\nZürich,🚀\n".encode()
    # WHEN converted
    _, out = convert(data)
    # THEN the output holds the raw UTF-8 characters
    assert out == '{"città":"Zürich","emoji":"🚀"}\n'.encode()


def test_fields_larger_than_the_stdlib_csv_limit_are_accepted() -> None:
    # GIVEN a 1 MB quoted field (the csv module's default limit is 128 KiB)
    big = "y" * 1_000_000
    # WHEN converted
    rows, out = convert(f'id,blob\n1,"{big}"\n'.encode())
    # THEN it comes through whole
    assert rows == 1
    assert records(out) == [{"id": "1", "blob": big}]


def test_missing_trailing_newline() -> None:
    # GIVEN a last row without a newline
    rows, out = convert(b"a,b\n1,2\n3,4")
    # THEN the last row is still converted
    assert rows == 2
    assert records(out) == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


def test_blank_lines_are_skipped() -> None:
    # GIVEN blank lines in the middle and at the end (LF and CRLF)
    rows, out = convert(b"a,b\n1,2\n\n3,4\n\r\n\n")
    # THEN only the data rows are written
    assert rows == 2
    assert records(out) == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


def test_header_only_file_gives_no_rows_and_no_output() -> None:
    # GIVEN a file with only a header
    blocks: list[bytes] = []
    # WHEN converted
    rows = convert_stream(io.BytesIO(b"a,b,c\n"), spec(), blocks.append)
    # THEN zero rows and the sink is never called
    assert rows == 0
    assert blocks == []


def test_tsv_splits_on_tabs_only() -> None:
    # GIVEN a TSV file whose values contain commas
    data = b"id\tcity\n1\tParis, France\n2\t\n"
    # WHEN converted as TSV
    rows, out = convert(data, fmt="tsv")
    # THEN tabs separate fields, commas are text
    assert rows == 2
    assert records(out) == [{"id": "1", "city": "Paris, France"}, {"id": "2", "city": ""}]


def test_gzip_input_is_decompressed() -> None:
    # GIVEN a gzip-compressed CSV
    data = gzip.compress(b"id,name\n1,a\n2,b\n")
    # WHEN converted with compression gzip
    rows, out = convert(data, compression="gzip")
    # THEN it converts like the plain file
    assert rows == 2
    assert out == b'{"id":"1","name":"a"}\n{"id":"2","name":"b"}\n'


def test_multi_member_gzip_is_read_to_the_end() -> None:
    # GIVEN a gzip file made of two concatenated members (as `cat a.gz b.gz` produces)
    data = gzip.compress(b"id\n1\n") + gzip.compress(b"2\n3\n")
    # WHEN converted
    rows, out = convert(data, compression="gzip")
    # THEN rows from both members are converted
    assert rows == 3
    assert records(out) == [{"id": "1"}, {"id": "2"}, {"id": "3"}]


def test_gzipped_tsv() -> None:
    rows, out = convert(gzip.compress(b"a\tb\nx,y\tz\n"), fmt="tsv", compression="gzip")
    assert rows == 1
    assert records(out) == [{"a": "x,y", "b": "z"}]


# --- malformed content ----------------------------------------------------------------------


def test_ragged_row_names_row_and_field_counts() -> None:
    # GIVEN a third row (header = row 1) with one field too many
    data = b"a,b\n1,2\n3,4,5\n6,7\n"
    # WHEN converted
    with pytest.raises(MalformedContent) as err:
        convert(data)
    # THEN the error says where and what
    assert str(err.value) == "row 3 (line 3): expected 2 fields as in the header, found 3"


def test_short_row_is_ragged_too() -> None:
    with pytest.raises(MalformedContent, match=r"row 2 \(line 2\): expected 3 fields .* found 2"):
        convert(b"a,b,c\n1,2\n")


def test_row_and_line_numbers_differ_after_quoted_newlines() -> None:
    # GIVEN a row spanning lines 2-3, then a ragged row starting on line 4
    data = b'a,b\n1,"x\ny"\n2\n'
    # WHEN converted
    with pytest.raises(MalformedContent) as err:
        convert(data)
    # THEN it is row 3, starting on physical line 4
    assert str(err.value).startswith("row 3 (line 4): expected 2 fields")


def test_invalid_utf8_names_the_row() -> None:
    # GIVEN an invalid byte (0xff) in the fourth row
    data = b"a,b\n1,ok\n2,ok\n3,caf\xff\n4,ok\n"
    # WHEN converted
    with pytest.raises(MalformedContent) as err:
        convert(data)
    # THEN the error names that row
    assert str(err.value) == "row 4 (line 4): not valid UTF-8"


def test_invalid_utf8_far_into_the_file_names_the_exact_row() -> None:
    # GIVEN a bad byte well past the decoder's first chunk
    good = b"".join(b"%d,fine\n" % i for i in range(20_000))
    data = b"a,b\n" + good + b"20000,\xc3\x28\n"
    # WHEN converted
    with pytest.raises(MalformedContent) as err:
        convert(data)
    # THEN the row number is exact (header + 20000 rows before it)
    assert str(err.value).startswith("row 20002 ")


def test_invalid_utf8_in_header() -> None:
    with pytest.raises(MalformedContent, match=r"header \(row 1\): column 2 is not valid UTF-8"):
        convert(b"a,b\xfe\n1,2\n")


def test_latin1_file_is_rejected_not_mangled() -> None:
    # GIVEN a file encoded in Latin-1 rather than UTF-8
    data = "name\nJosé\n".encode("latin-1")
    # THEN it is malformed (never silently re-encoded)
    with pytest.raises(MalformedContent, match=r"row 2 .*not valid UTF-8"):
        convert(data)


@pytest.mark.parametrize("data", [b"", b"\n\n\r\n", b"\xef\xbb\xbf"])
def test_empty_file_has_no_header(data: bytes) -> None:
    with pytest.raises(MalformedContent, match="no header"):
        convert(data)


def test_empty_header_name_is_rejected() -> None:
    with pytest.raises(MalformedContent, match=r"column 2 has an empty name"):
        convert(b"a,,c\n1,2,3\n")


def test_duplicate_header_names_are_rejected() -> None:
    # GIVEN two columns named "id"
    with pytest.raises(MalformedContent) as err:
        convert(b"id,name,id\n1,a,2\n")
    # THEN both positions are named
    assert str(err.value) == "header (row 1): duplicate column name 'id' (columns 1 and 3)"


def test_unterminated_quote_is_malformed() -> None:
    with pytest.raises(MalformedContent, match=r"row 3 \(line 3\): cannot parse"):
        convert(b'a,b\n1,2\n3,"never closed\n4,5\n')


def test_text_after_closing_quote_is_malformed() -> None:
    with pytest.raises(MalformedContent, match=r"row 2 \(line 2\): cannot parse"):
        convert(b'a,b\n"1"x,2\n')


def test_corrupt_gzip_is_malformed() -> None:
    # GIVEN a gzip stream with bytes overwritten in the middle
    data = bytearray(gzip.compress(b"a,b\n" + b"1,2\n" * 10_000))
    data[40:80] = bytes(40)
    # THEN conversion fails as MalformedContent
    with pytest.raises(MalformedContent, match="corrupt or truncated gzip"):
        convert(bytes(data), compression="gzip")


def test_truncated_gzip_is_malformed() -> None:
    data = gzip.compress(b"a,b\n" + b"1,2\n" * 10_000)
    with pytest.raises(MalformedContent, match="corrupt or truncated gzip"):
        convert(data[: len(data) // 2], compression="gzip")


def test_plain_file_declared_gzip_is_malformed() -> None:
    with pytest.raises(MalformedContent, match=r"corrupt or truncated gzip.*Not a gzipped file"):
        convert(b"id,name\n1,alpha\n2,beta\n", compression="gzip")


class FailingStream(io.RawIOBase):
    """Serves some bytes, then fails like a dropped connection (an OSError, as botocore's are)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(min(len(buffer), 1000))
        if not chunk:
            raise ConnectionResetError("connection reset by peer")
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_source_read_errors_are_not_mistaken_for_bad_content(compression: Compression) -> None:
    # GIVEN a source whose connection drops midway (a transient problem, not a bad file)
    payload = b"a,b\n" + b"1,2\n" * 5_000
    data = gzip.compress(payload) if compression == "gzip" else payload
    source = cast(BinaryIO, FailingStream(data[: len(data) // 2]))
    # WHEN converted
    # THEN the read error propagates unchanged, so the caller can classify it as transient
    with pytest.raises(ConnectionResetError):
        convert_stream(source, spec(compression=compression), lambda _: None)


# --- streaming ------------------------------------------------------------------------------


def test_output_rows_equal_input_rows_and_blocks_are_bounded() -> None:
    # GIVEN 50,000 rows
    data = b"id,v\n" + b"".join(b"%d,value-%d\n" % (i, i) for i in range(50_000))
    blocks: list[bytes] = []
    # WHEN converted
    rows = convert_stream(io.BytesIO(data), spec(), blocks.append)
    # THEN every input row is one output line, in order
    out = b"".join(blocks)
    assert rows == 50_000
    assert out.count(b"\n") == 50_000
    assert records(out)[-1] == {"id": "49999", "v": "value-49999"}
    # AND output is handed over in blocks of about BLOCK_BYTES, not all at once
    assert len(blocks) > 1
    assert all(len(b) < BLOCK_BYTES + 1024 for b in blocks)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_memory_does_not_grow_with_file_size(compression: Compression) -> None:
    # GIVEN a ~30 MB CSV generated on the fly (never held whole in memory)
    row_count = 30_016
    chunks = generated_csv(row_count)
    stream = ChunkStream(gzipped(chunks) if compression == "gzip" else chunks)
    written = 0

    def sink(block: bytes) -> None:
        nonlocal written
        written += len(block)

    # WHEN converted while tracing allocations
    tracemalloc.start()
    try:
        rows = convert_stream(cast(BinaryIO, stream), spec(compression=compression), sink)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # THEN all rows came through and the peak stayed at a few MiB (one output block + buffers)
    assert rows == row_count
    assert written > 30_000_000
    assert peak < 6 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
