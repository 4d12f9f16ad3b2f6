"""The conversion engine: delimited text (plain, gzip, zstd, bz2) -> JSON Lines and Parquet,
streamed in bounded memory, parsed in parallel chunks; text mode keeps every value as written,
typed mode follows a data contract."""

from __future__ import annotations

import bz2
import csv
import gc
import gzip
import io
import json
import os
import random
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from tasks.convert import dialect, engine
from tasks.convert.engine import CHUNK_BYTES, EngineOptions, EngineResult, convert_stream
from tasks.convert.typed import ContractTyping
from tasks.data_contracts.config import parse_contracts
from tasks.errors import ContractViolation, MalformedContent
from tasks.formats import Compression, from_magic
from tasks.formats.keys import from_extension

if TYPE_CHECKING:
    from typing_extensions import Buffer

EDGE = Path(__file__).resolve().parents[1] / "fixtures" / "edge"
EDGE_INPUTS = sorted(p for p in EDGE.iterdir() if p.suffix in (".csv", ".tsv", ".psv"))


class Converted:
    """What one conversion wrote: the result and every sink's bytes."""

    def __init__(self, result: EngineResult, out: dict[str, bytes], rejected: bytes) -> None:
        self.result = result
        self.jsonl = out.get("jsonl", b"")
        self.parquet = out.get("parquet", b"")
        self.rejected = rejected

    def records(self) -> list[dict[str, Any]]:
        return records(self.jsonl)

    def table(self) -> pa.Table:
        return pq.read_table(io.BytesIO(self.parquet))


def run(source: bytes | BinaryIO, **options: Any) -> Converted:
    """Convert with EngineOptions(**options); every output format's bytes are collected."""
    opts = EngineOptions(**options)
    out: dict[str, list[bytes]] = {f: [] for f in opts.outputs}
    rejected: list[bytes] = []
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    result = convert_stream(
        stream, opts, {f: out[f].append for f in opts.outputs}, rejected_sink=rejected.append
    )
    return Converted(result, {f: b"".join(v) for f, v in out.items()}, b"".join(rejected))


def jsonl_of(data: bytes, **options: Any) -> bytes:
    return run(data, **options).jsonl


def records(output: bytes) -> list[dict[str, Any]]:
    assert output == b"" or output.endswith(b"\n")
    return [json.loads(line) for line in output.split(b"\n")[:-1]]


def error_of(data: bytes, **options: Any) -> str:
    with pytest.raises(MalformedContent) as err:
        run(data, **options)
    return str(err.value)


def both(data: bytes, **options: Any) -> Converted:
    return run(data, outputs=("jsonl", "parquet"), **options)


def expected_rows(data: bytes, delimiter: str = ",") -> list[dict[str, str]]:
    """The reference: stdlib csv, blank lines skipped."""
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter)
    header, *rows = [r for r in reader if r]
    return [dict(zip(header, row, strict=True)) for row in rows]


# --- edge cases: tests/fixtures/edge -------------------------------------------------------


@pytest.mark.parametrize("path", EDGE_INPUTS, ids=lambda p: p.name)
def test_edge_case_files(path: Path) -> None:
    # GIVEN an edge-case input and its expected JSON Lines (or error message)
    data = path.read_bytes()
    expected = path.with_name(path.name + ".jsonl")
    error = path.with_name(path.name + ".error")
    assert expected.exists() != error.exists(), f"{path.name}: give .jsonl or .error"
    for options in ({}, {"chunk_bytes": 1, "workers": 3}):
        # WHEN converted (whole, and cut into one-record chunks), delimiter sniffed
        if error.exists():
            # THEN it fails with exactly that message
            assert error_of(data, **options) == error.read_text().strip(), options
        else:
            # THEN the JSON Lines are exact
            assert jsonl_of(data, **options) == expected.read_bytes(), options


@pytest.mark.parametrize(
    "path", [p for p in EDGE_INPUTS if Path(f"{p}.jsonl").exists()], ids=lambda p: p.name
)
def test_edge_case_parquet_equals_json_lines(path: Path) -> None:
    # GIVEN an edge-case input converted to both formats at once
    out = both(path.read_bytes())
    # THEN the Parquet file holds the same rows, all strings ("" kept, never null)
    table = out.table()
    assert table.column_names == out.result.columns
    assert all(pa.types.is_large_string(field.type) for field in table.schema)
    assert table.to_pylist() == out.records()
    assert out.result.rows == table.num_rows == len(out.records())


# --- text mode ------------------------------------------------------------------------------


def test_simple_csv_becomes_exact_json_lines() -> None:
    # GIVEN a header and two rows
    out = run(b"id,name\n1,alpha\n2,beta\n")
    # THEN one object per row, header names as keys in header order, values as text
    assert out.jsonl == b'{"id":"1","name":"alpha"}\n{"id":"2","name":"beta"}\n'
    assert out.result == EngineResult(
        rows=2, rejected_rows=0, columns=["id", "name"], delimiter=",", compression="none"
    )


def test_numbers_and_dates_are_not_typed_in_text_mode() -> None:
    data = b"n,f,b,t\n007,1.50,true,2024-01-01T00:00:00Z\n"
    out = both(data)
    assert out.jsonl == b'{"n":"007","f":"1.50","b":"true","t":"2024-01-01T00:00:00Z"}\n'
    assert out.table().to_pylist() == out.records()


def test_fields_larger_than_the_stdlib_csv_limit_are_accepted() -> None:
    # GIVEN a 1 MB quoted field (the csv module's default limit is 128 KiB), in a chunk that
    # also holds a blank line (so the precise, stdlib-csv path parses it)
    big = "y" * 1_000_000
    data = f'id,blob\n1,"{big}"\n\n2,x\n'.encode()
    for options in ({}, {"chunk_bytes": 1 << 22}):
        # THEN it comes through whole either way
        assert records(jsonl_of(data, **options)) == [
            {"id": "1", "blob": big},
            {"id": "2", "blob": "x"},
        ]


def test_header_only_file_gives_no_rows_no_json_lines_and_an_empty_parquet_file() -> None:
    out = both(b"a,b,c\n")
    assert out.result.rows == 0
    assert out.jsonl == b""
    table = out.table()
    assert (table.num_rows, table.column_names) == (0, ["a", "b", "c"])


def test_one_column_file_blank_lines_are_skipped_and_quoted_empties_kept() -> None:
    # GIVEN a one-column file: a blank line (skipped) and "" (an empty value) look alike
    data = b'v\n1\n\n""\n2\n\n'
    for chunk_bytes in (1, 3, CHUNK_BYTES):
        out = run(data, chunk_bytes=chunk_bytes)
        assert out.records() == [{"v": "1"}, {"v": ""}, {"v": "2"}], chunk_bytes


def test_quoted_empty_line_in_a_wider_file_is_a_ragged_row() -> None:
    assert error_of(b'a,b\n1,2\n""\n') == "row 3: expected 2 fields as in the header, found 1"


def test_whitespace_only_line_is_not_blank() -> None:
    assert error_of(b"a,b\n1,2\n  \n") == "row 3: expected 2 fields as in the header, found 1"


def test_blank_lines_are_not_counted_in_row_numbers() -> None:
    # GIVEN blank lines before a bad row
    assert error_of(b"a,b\n1,2\n\n\n3,4,5\n") == (
        "row 3: expected 2 fields as in the header, found 3"
    )


def test_row_numbers_count_records_not_lines() -> None:
    # GIVEN a row spanning two lines, then a ragged row starting on line 4
    assert error_of(b'a,b\n1,"x\ny"\n2\n').startswith("row 3: expected 2 fields")


def test_invalid_utf8_far_into_the_file_names_the_exact_row() -> None:
    # GIVEN a bad byte after 20,000 good rows, cut into several chunks
    good = b"".join(b"%d,fine\n" % i for i in range(20_000))
    data = b"a,b\n" + good + b"20000,\xc3\x28\n"
    for chunk_bytes in (4096, CHUNK_BYTES):
        # THEN the row number is exact (header + 20000 rows before it)
        assert error_of(data, chunk_bytes=chunk_bytes) == "row 20002: not valid UTF-8"


def test_ragged_row_in_a_later_chunk_names_the_exact_row() -> None:
    good = b"".join(b'%d,"q\n%d"\n' % (i, i) for i in range(5_000))
    data = b"a,b\n" + good + b"x\n"
    for chunk_bytes, workers in ((1000, 1), (1000, 3), (CHUNK_BYTES, 2)):
        assert error_of(data, chunk_bytes=chunk_bytes, workers=workers) == (
            "row 5002: expected 2 fields as in the header, found 1"
        )


def test_the_first_bad_row_is_reported_when_several_chunks_fail() -> None:
    rows = [b"%d,ok\n" % i for i in range(2_000)]
    rows[500] = b"bad\n"  # row 502
    rows[1500] = b"also,bad,row\n"
    data = b"a,b\n" + b"".join(rows)
    for workers in (1, 2, 3):
        assert error_of(data, chunk_bytes=512, workers=workers).startswith("row 502: ")


def test_unterminated_quote_after_many_chunks_names_its_row() -> None:
    data = b"a,b\n" + b"".join(b"%d,ok\n" % i for i in range(1_000)) + b'x,"open\n1,2\n'
    for chunk_bytes in (7, 1000, CHUNK_BYTES):
        assert error_of(data, chunk_bytes=chunk_bytes) == (
            "row 1002: cannot parse: the file ends inside a quoted field"
        )


def test_a_bad_row_before_an_unterminated_quote_is_reported_first() -> None:
    data = b"a,b\n1,2\n3\n" + b"4,5\n" * 100 + b'6,"open\n'
    assert error_of(data, chunk_bytes=64) == "row 3: expected 2 fields as in the header, found 1"


def test_a_quote_never_closed_does_not_buffer_the_rest_of_the_file() -> None:
    # GIVEN a quote opened early in a long file, and a record limit far below the file size
    data = b'a,b\n1,2\n3,"open\n' + b"4,5\n" * 50_000
    # THEN conversion stops at the limit, naming the row where the record starts
    message = error_of(data, chunk_bytes=4096, max_record_bytes=64 * 1024)
    assert (
        message
        == f"row 3: cannot parse: a record longer than {64 * 1024} bytes (a quote never closed?)"
    )


@pytest.mark.parametrize("chunk_bytes", [1, 5, CHUNK_BYTES])
def test_carriage_return_inside_quotes_is_data_outside_quotes_an_error(chunk_bytes: int) -> None:
    # GIVEN CRs that don't end a line: quoted (data) and unquoted (not CSV), next to blank lines
    # and CRLF rows, so that both parse paths see them
    quoted = b'a,b\r\n1,"x\ry"\r\n\n2,"\r"\r\n'
    assert records(jsonl_of(quoted, chunk_bytes=chunk_bytes)) == [
        {"a": "1", "b": "x\ry"},
        {"a": "2", "b": "\r"},
    ]
    unquoted = b"a,b\n1,2\n\n3,x\ry\n"
    assert error_of(unquoted, chunk_bytes=chunk_bytes) == (
        "row 3: cannot parse: a carriage return (CR) outside quotes"
    )


def test_leading_blank_lines_before_the_header_are_skipped() -> None:
    assert run(b"\n\r\nid\n1\n").records() == [{"id": "1"}]


def test_header_with_a_quoted_newline_and_delimiter() -> None:
    out = run(b'id,"first\nsecond, name"\n1,2\n')
    assert out.result.columns == ["id", "first\nsecond, name"]
    assert out.records() == [{"id": "1", "first\nsecond, name": "2"}]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'a,"b\n', "header (row 1): cannot parse: unexpected end of data"),
        (b'a,"b\nc\n1,2\n', "header (row 1): cannot parse: unexpected end of data"),
        (b'"a"x,b\n1,2\n', "header (row 1): cannot parse: ',' expected after '\"'"),
    ],
)
def test_header_that_cannot_be_parsed_is_row_1(data: bytes, message: str) -> None:
    assert error_of(data) == message


# --- delimiters -----------------------------------------------------------------------------

DELIMITERS = [",", "\t", "|", ";"]


def delimited(delimiter: str) -> bytes:
    """A file in ``delimiter`` whose values hold the other delimiters, quoted or not."""
    others = "".join(d for d in DELIMITERS if d != delimiter)
    rows = [
        ["id", "text", "note"],
        ["1", f"a{others}b", ""],
        ["2", f"x{delimiter}y", 'say "hi"'],
        ["3", "line\nbreak", others],
    ]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


@pytest.mark.parametrize("delimiter", DELIMITERS, ids=repr)
@pytest.mark.parametrize("declared", [True, False], ids=["declared", "sniffed"])
def test_delimiters_declared_and_sniffed(delimiter: str, declared: bool) -> None:
    # GIVEN a file in this delimiter, with the others in its values
    data = delimited(delimiter)
    # WHEN converted with the delimiter declared, or sniffed from the header
    out = both(data, delimiter=delimiter if declared else None)
    # THEN only that delimiter separates fields
    assert out.result.delimiter == delimiter
    assert out.records() == expected_rows(data, delimiter)
    assert out.table().to_pylist() == out.records()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"a,b,c", ","),
        (b"a\tb\tc", "\t"),
        (b"a|b|c", "|"),
        (b"a;b;c", ";"),
        (b'"x,y,z";b;c', ";"),  # commas inside a quoted name don't count
        (b"a,b;c", ","),  # a tie goes to the comma
        (b"only", ","),  # one column
        (b'"a|b"', ","),
    ],
)
def test_sniffing_counts_delimiters_outside_quotes(header: bytes, expected: str) -> None:
    assert dialect.sniff(header) == expected


def test_declared_delimiter_wins_over_sniffing() -> None:
    # GIVEN a header with more commas than semicolons, declared as semicolon-separated
    out = run(b"a,b;c\n1,2;3\n", delimiter=";")
    assert out.records() == [{"a,b": "1,2", "c": "3"}]


# --- compression ----------------------------------------------------------------------------

PAYLOAD = b"id,name\n" + b"".join(b'%d,"name %d"\n' % (i, i) for i in range(20_000))


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def zstd_streamed(data: bytes) -> bytes:
    """As a pipe writes it: no content size in the frame header, a checksum at the end."""
    compressor = zstandard.ZstdCompressor(write_checksum=True).compressobj()
    return compressor.compress(data) + compressor.flush()


COMPRESSORS: dict[Compression, Any] = {"gzip": gzip.compress, "zstd": zstd, "bz2": bz2.compress}


@pytest.mark.parametrize("compression", list(COMPRESSORS))
@pytest.mark.parametrize("declared", [True, False], ids=["by-extension", "by-magic"])
def test_compressed_input_is_decompressed(compression: Compression, declared: bool) -> None:
    # GIVEN a compressed CSV, its compression declared (from the extension) or not
    data = COMPRESSORS[compression](PAYLOAD)
    # WHEN converted
    out = run(data, compression=compression if declared else None)
    # THEN it converts like the plain file, and the compression found is reported
    assert out.result.compression == compression
    assert out.jsonl == jsonl_of(PAYLOAD)
    assert out.result.rows == 20_000


def test_plain_input_by_magic_is_none() -> None:
    assert run(b"a\n1\n").result.compression == "none"


@pytest.mark.parametrize(
    "data",
    [
        gzip.compress(b"id\n1\n") + gzip.compress(b"2\n3\n"),  # `cat a.gz b.gz`
        zstd(b"id\n1\n") + zstd_streamed(b"2\n3\n"),  # two frames
        bz2.compress(b"id\n1\n") + bz2.compress(b"2\n3\n"),  # two streams
    ],
    ids=["gzip", "zstd", "bz2"],
)
def test_concatenated_members_are_read_to_the_end(data: bytes) -> None:
    assert run(data).records() == [{"id": "1"}, {"id": "2"}, {"id": "3"}]


def test_zstd_written_by_a_stream_and_with_a_skippable_frame() -> None:
    # GIVEN zstd without content size (as a pipe writes it), and behind a skippable frame
    # (as pzstd writes it)
    skippable = (0x184D2A50).to_bytes(4, "little") + (4).to_bytes(4, "little") + b"meta"
    for data in (zstd_streamed(PAYLOAD), skippable + zstd(PAYLOAD)):
        out = run(data)
        assert (out.result.compression, out.result.rows) == ("zstd", 20_000)


@pytest.mark.parametrize("compression", list(COMPRESSORS))
@pytest.mark.parametrize("declared", [True, False], ids=["by-extension", "by-magic"])
@pytest.mark.parametrize(
    "cut",
    [lambda d: d[: len(d) // 2], lambda d: d[:-1], lambda d: d[:12]],
    ids=["half", "last-byte", "in-the-header"],
)
def test_truncated_compressed_input_is_malformed(
    compression: Compression, declared: bool, cut: Any
) -> None:
    # GIVEN compressed data cut short (an interrupted upload)
    data = cut(COMPRESSORS[compression](PAYLOAD))
    # THEN it is MalformedContent saying so, never a silently shorter output
    with pytest.raises(MalformedContent, match="corrupt or truncated compressed data"):
        run(data, compression=compression if declared else None, chunk_bytes=4096)


@pytest.mark.parametrize("compression", list(COMPRESSORS))
def test_corrupt_compressed_input_is_malformed(compression: Compression) -> None:
    # GIVEN compressed data with 64 bytes zeroed in the middle
    broken = bytearray(COMPRESSORS[compression](PAYLOAD))
    middle = len(broken) // 2
    broken[middle : middle + 64] = bytes(64)
    # THEN it is MalformedContent (the decoder may hand over garbage before it notices: the
    # first row that garbage breaks can be what is reported), never another type of error
    with pytest.raises(MalformedContent):
        run(bytes(broken), chunk_bytes=4096)


def test_a_broken_deflate_stream_at_the_start_is_malformed() -> None:
    # GIVEN gzip data whose deflate stream breaks in its first block (found by
    # test_native_fuzz.py: isal's IsalError is not an OSError)
    data = gzip.compress(b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(200)))
    broken = data[:10] + b"\x00" + data[10:]
    # THEN it is MalformedContent naming the compressed data, never another type of error
    with pytest.raises(MalformedContent, match="corrupt or truncated compressed data in the"):
        run(broken)


@pytest.mark.parametrize("compression", list(COMPRESSORS))
def test_plain_file_declared_compressed_is_malformed(compression: Compression) -> None:
    with pytest.raises(MalformedContent, match="corrupt"):
        run(b"id,name\n1,alpha\n2,beta\n", compression=compression)


def test_truncated_zstd_is_not_a_shorter_file() -> None:
    # GIVEN a zstd file cut at 90% (python-zstandard's reader alone returns the prefix)
    rnd = random.Random(4)
    payload = b"a,b\n" + b"".join(b"%d,%d\n" % (i, rnd.randint(0, 10**9)) for i in range(50_000))
    data = zstd(payload)
    # THEN the truncation is reported, not 45,000 rows converted
    with pytest.raises(MalformedContent, match="zstd data ends inside a frame"):
        run(data[: len(data) * 9 // 10])


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("in/a.csv.gz", "gzip"),
        ("in/A.CSV.GZ", "gzip"),
        ("in/a.tsv.zst", "zstd"),
        ("in/a.psv.bz2", "bz2"),
        ("in/a.csv", None),
        ("in/gz.csv", None),
    ],
)
def test_compression_from_extension(key: str, expected: Compression | None) -> None:
    assert from_extension(key) == expected


@pytest.mark.parametrize(
    "head",
    [b"BZh,a,b\n1,", b"BZh9 is a column", b"BZh\n"],
)
def test_text_that_starts_like_bz2_is_plain(head: bytes) -> None:
    # GIVEN a plain CSV whose first bytes are "BZh" (bz2's magic is longer than that)
    assert from_magic(head) == "none"


class Trickle(io.RawIOBase):
    """Serves ``step`` bytes per read: as a network body may, even when asked for more."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(min(len(buffer), self._step))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("compression", list(COMPRESSORS))
def test_magic_is_recognised_from_a_stream_that_returns_short_reads(
    compression: Compression,
) -> None:
    data = COMPRESSORS[compression](b"id\n1\n2\n")
    out = run(cast(BinaryIO, Trickle(data, 1)))
    assert (out.result.compression, out.records()) == (compression, [{"id": "1"}, {"id": "2"}])


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


@pytest.mark.parametrize("compression", ["none", *COMPRESSORS])
@pytest.mark.parametrize("where", [0.5, 0.001], ids=["mid-stream", "in-the-header"])
def test_source_read_errors_are_not_mistaken_for_bad_content(
    compression: Compression, where: float
) -> None:
    # GIVEN a source whose connection drops (a transient problem, not a bad file)
    data = PAYLOAD if compression == "none" else COMPRESSORS[compression](PAYLOAD)
    source = cast(BinaryIO, FailingStream(data[: int(len(data) * where)]))
    # WHEN converted THEN the read error propagates unchanged, so the caller can classify it
    with pytest.raises(ConnectionResetError) as err:
        run(source, compression=None if compression == "none" else compression)
    # AND it is not chained to itself
    assert err.value.__cause__ is None


# --- correctness: row counts, Parquet = JSON Lines, any splitting ---------------------------

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
CITIES = ["Zürich", "São Paulo", "Kraków", "Reykjavík", "東京", "Montréal", "Oslo", "Lima"]


def bench_like_csv(rows: int, seed: int = 7) -> bytes:
    """Data like bench/generate.py's: 12 mixed columns with quoted commas, escaped quotes and
    newlines (LF and CRLF) inside values, empty fields and non-ASCII text."""
    rnd = random.Random(seed)
    lines = [
        "id,user_id,amount,ratio,created_at,updated_at,country,status,comment,tags,city,note\n"
    ]
    for i in range(1, rows + 1):
        w = rnd.sample(WORDS, 3)
        comment = [
            f'"{w[0]}, {w[1]}\n{w[2]} said ""hi"""',
            f'"{w[0]}, {w[1]}"',
            "",
            '""',
            f'"{w[0]}\r\n{w[1]}"',
            " ".join(w),
        ][i % 6]
        lines.append(
            f"{i},{rnd.randint(1, 10**6)},{rnd.randint(0, 10**6) / 100:.2f},{rnd.random():.6f},"
            f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z,"
            f"{'' if i % 5 == 0 else '2026-11-02T10:00:00Z'},{'CH' if i % 2 else 'JP'},"
            f"{['new', 'paid', 'shipped'][i % 3]},{comment},"
            f'"{w[0]};{w[1]}",{CITIES[i % 8]},{"" if i % 3 else "ok"}\n'
        )
    return "".join(lines).encode()


def test_output_rows_equal_input_rows_as_stdlib_csv_reads_them() -> None:
    # GIVEN ~500 KB of mixed data, cut into many chunks
    data = bench_like_csv(3_000)
    assert len(data) > 300_000
    # WHEN converted to both formats
    out = both(data, chunk_bytes=16 * 1024)
    # THEN every row stdlib csv reads is one output row, value for value, in order
    reference = expected_rows(data)
    assert len(reference) == 3_000
    assert out.result.rows == 3_000
    assert out.records() == reference
    # AND the Parquet file holds exactly the same rows, all strings ("" kept)
    table = out.table()
    assert all(pa.types.is_large_string(field.type) for field in table.schema)
    assert table.to_pylist() == reference


@pytest.mark.parametrize(
    ("rows", "chunk_sizes"),
    [
        (150, (1, 7, 64, 1000, CHUNK_BYTES)),  # every cut, down to one byte per read
        (650, (1000, 4096, CHUNK_BYTES)),  # > 64 KiB: past the header's first read
    ],
    ids=["tiny-chunks", "past-the-first-read"],
)
def test_correct_under_any_parallel_splitting(rows: int, chunk_sizes: tuple[int, ...]) -> None:
    # GIVEN data with quoted newlines, escaped quotes, delimiters inside quotes and CRLFs
    # inside values
    data = bench_like_csv(rows)
    reference = expected_rows(data)
    assert len(reference) == rows
    outputs: dict[tuple[int, int], tuple[bytes, list[dict[str, Any]]]] = {}
    # WHEN converted with each chunk size and worker count
    for chunk_bytes in chunk_sizes:
        for workers in (1, 2, 3):
            out = both(data, chunk_bytes=chunk_bytes, workers=workers)
            outputs[chunk_bytes, workers] = (out.jsonl, out.table().to_pylist())
    # THEN every run wrote the same bytes and rows, and those are the input's rows: no record
    # was cut at a newline or delimiter inside quotes
    first_jsonl, first_rows = outputs[chunk_sizes[0], 1]
    assert records(first_jsonl) == reference
    assert first_rows == reference
    for key, (jsonl, table_rows) in outputs.items():
        assert jsonl == first_jsonl, key
        assert table_rows == first_rows, key


# --- the Parquet file -----------------------------------------------------------------------


def test_parquet_reads_the_same_in_pyarrow_polars_and_duckdb(tmp_path: Path) -> None:
    import duckdb
    import polars as pl

    # GIVEN mixed data (quoted newlines, non-ASCII, empties) written as several row groups
    data = bench_like_csv(3_000)
    path = tmp_path / "out.parquet"
    path.write_bytes(both(data, chunk_bytes=64 * 1024).parquet)
    reference = expected_rows(data)
    # THEN each reader gets exactly the input's rows, as text
    assert pq.read_table(path).to_pylist() == reference
    assert pl.read_parquet(path).to_dicts() == reference
    relation = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
    assert [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()] == (
        reference
    )


def test_parquet_dictionary_encodes_repeating_columns_and_keeps_statistics() -> None:
    # GIVEN a column of nearly unique values (id) and one of few values (country)
    # WHEN converted in chunks of 16 KiB (about 120 rows), row groups ending at 1,000 rows
    data = bench_like_csv(3_000)
    out = both(data, chunk_bytes=16 * 1024, row_group_rows=1000)
    metadata = pq.ParquetFile(io.BytesIO(out.parquet)).metadata
    names = out.result.columns
    # THEN a row group holds the rows of many chunks (rows, not chunks, end it), each with
    # min/max statistics and the page index
    sizes = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
    assert len(data) // (16 * 1024) > 10 and len(sizes) == 3, sizes
    assert all(1000 <= n < 1200 for n in sizes[:-1]) and sum(sizes) == 3000
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        country = row_group.column(names.index("country"))
        assert country.statistics.has_min_max
        assert country.has_column_index and country.has_offset_index
        assert {country.statistics.min, country.statistics.max} == {"CH", "JP"}
        # AND the dictionary only where values repeat (elsewhere it compresses worse)
        assert "RLE_DICTIONARY" in country.encodings
        assert "RLE_DICTIONARY" not in row_group.column(names.index("id")).encodings
        assert country.compression == "ZSTD"


# --- streaming and memory -------------------------------------------------------------------


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


ROW_BYTES = 512


def generated_csv(rows: int) -> Iterator[bytes]:
    """A header, then ``rows`` rows of exactly ROW_BYTES bytes each, in chunks of 64 rows."""
    yield b"id,comment\n"
    for start in range(0, rows, 64):
        yield b"".join(
            b'%08d,"quoted, %s"\n' % (i, b"x" * (ROW_BYTES - 22)) for i in range(start, start + 64)
        )


def gzipped(chunks: Iterator[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    for chunk in chunks:
        if compressed := compressor.compress(chunk):
            yield compressed
    yield compressor.flush()


def test_json_lines_lent_without_a_copy_stay_intact_while_held() -> None:
    # GIVEN a file of many chunks, and a sink that keeps every JSON Lines block it is given
    # (the native core lends its buffers and takes them again only once Python lets go)
    rows, chunk_bytes = 312 * 64, 64 * 1024  # generated_csv writes rows 64 at a time
    body = b"".join(generated_csv(rows))
    held: list[tuple[Buffer, bytes]] = []

    def sink(block: Buffer) -> None:
        held.append((block, bytes(block)))

    # WHEN converted
    result = convert_stream(
        io.BytesIO(body), EngineOptions(chunk_bytes=chunk_bytes, workers=2), {"jsonl": sink}
    )
    # THEN no block held was reused for a later chunk: each still reads as when it was written
    assert result.rows == rows and len(held) > 20
    assert all(bytes(block) == copy for block, copy in held)
    assert b"".join(copy for _, copy in held).count(b"\n") == rows
    # AND once let go, the buffers are taken again: converting again gives the same bytes
    first = b"".join(copy for _, copy in held)
    held.clear()
    again: list[bytes] = []
    convert_stream(
        io.BytesIO(body),
        EngineOptions(chunk_bytes=chunk_bytes, workers=2),
        {"jsonl": lambda block: again.append(bytes(block))},
    )
    assert b"".join(again) == first


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_memory_is_bounded_the_engine_reads_only_a_few_chunks_ahead(
    compression: Compression,
) -> None:
    # tracemalloc can't see polars' and arrow's allocations, so the bound is checked where it
    # comes from: the input held at any time. Rows are all ROW_BYTES long, so the input that
    # the output written so far accounts for is known; the rest is held in memory (chunks in
    # flight, read buffers). It must stay a few chunks, however large the file.
    # GIVEN ~16 MB generated on the fly (never held whole)
    rows, chunk_bytes, workers = 32_768, 128 * 1024, 2
    chunks = generated_csv(rows)
    source = ChunkStream(gzipped(chunks) if compression == "gzip" else chunks)
    written_rows = 0
    largest_lead = 0

    def sink(block: Buffer) -> None:  # JSON Lines come lent, not as bytes
        nonlocal written_rows, largest_lead
        largest_lead = max(largest_lead, source.bytes_read - written_rows * ROW_BYTES)
        written_rows += bytes(block).count(b"\n")

    # WHEN converted
    result = convert_stream(
        cast(BinaryIO, source),
        EngineOptions(chunk_bytes=chunk_bytes, workers=workers),
        {"jsonl": sink},
    )
    # THEN every row came through
    assert result.rows == written_rows == rows
    if compression == "none":
        # AND the engine never ran further ahead of its output than: one 1 MiB read buffer,
        # the header's 64 KiB read, the chunks queued and in flight (workers + 2) and the
        # outputs waiting for the sink thread (SINK_DEPTH + the one being written). (For gzip
        # the bytes read are compressed: the same check would prove nothing.)
        in_memory = workers + 2 + engine.SINK_DEPTH + 1
        bound = (1 << 20) + 64 * 1024 + in_memory * chunk_bytes
        assert chunk_bytes < largest_lead <= bound, f"{largest_lead / 2**20:.2f} MiB ahead"
        assert rows * ROW_BYTES > 8 * bound  # the file is much larger than the bound


def test_output_is_handed_over_as_it_is_produced() -> None:
    # GIVEN 50,000 rows, in 64 KiB chunks
    data = b"id,v\n" + b"".join(b"%d,value-%d\n" % (i, i) for i in range(50_000))
    blocks: list[bytes] = []
    convert_stream(io.BytesIO(data), EngineOptions(chunk_bytes=64 * 1024), {"jsonl": blocks.append})
    # THEN the sink receives one block per chunk, none larger than a chunk's worth of output
    out = b"".join(blocks)
    assert records(out)[-1] == {"id": "49999", "v": "value-49999"}
    assert out.count(b"\n") == 50_000
    assert len(blocks) > 10
    assert max(len(b) for b in blocks) < 4 * 64 * 1024


def test_output_is_written_while_the_next_chunks_are_read() -> None:
    # GIVEN a sink whose first write lasts until the engine has read on from the source (a
    # slow disk, an S3 part upload); chunks of 256 KiB, so the few in memory outlast the
    # engine's 1 MiB read buffer
    chunk = 256 * 1024
    read_on = threading.Event()
    until = [1 << 62]

    class Source(ChunkStream):
        def readinto(self, buffer: Any) -> int:
            size = super().readinto(buffer)
            if self.bytes_read > until[0]:
                read_on.set()
            return size

    source = Source(generated_csv(16_384))  # 8 MiB
    blocks: list[bytes] = []
    waited: list[bool] = []

    def sink(block: bytes) -> None:
        if not blocks:
            until[0] = source.bytes_read
            waited.append(read_on.wait(timeout=10))
        blocks.append(block)

    # WHEN converted
    result = convert_stream(
        cast(BinaryIO, source), EngineOptions(chunk_bytes=chunk), {"jsonl": sink}
    )
    # THEN the source was read on while the first write waited (it did not time out), and the
    # writes kept the file's order and lost nothing
    assert waited == [True]
    ids = [int(row["id"]) for row in records(b"".join(blocks))]
    assert result.rows == len(ids) == 16_384
    assert ids == sorted(ids)


def test_a_sink_error_is_raised_as_it_is_and_nothing_is_written_after() -> None:
    # GIVEN a sink that fails on its third write (e.g. S3 refusing a part)
    calls = 0

    def sink(block: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("the part upload failed")

    data = b"a,b\n" + b"1,2\n" * 50_000
    # WHEN converted THEN the sink's own error comes out (its type kept: the caller tells a
    # network error from bad content by it)
    with pytest.raises(OSError, match="the part upload failed"):
        convert_stream(io.BytesIO(data), EngineOptions(chunk_bytes=4096), {"jsonl": sink})
    # AND the engine stopped soon after, with no sink thread left to write after it returned
    assert 3 <= calls <= 3 + engine.SINK_DEPTH + 1
    assert not [t for t in threading.enumerate() if t.name.startswith("sink")]


def test_failed_conversion_writes_nothing_more_to_the_parquet_sink(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a Parquet sink that is closed as soon as the conversion fails (as an S3 upload is
    # aborted, or a local file closed)
    written: list[int] = []
    late: list[int] = []
    closed = False

    def sink(block: bytes) -> None:
        (late if closed else written).append(len(block))

    data = b"a,b\n" + b"1,2\n" * 10_000 + b"3\n"
    options = EngineOptions(outputs=("parquet",), chunk_bytes=4096, row_group_rows=1000)
    try:
        try:
            convert_stream(io.BytesIO(data), options, {"parquet": sink})
        finally:
            closed = True  # while the error propagates, as `with open(...)` or an abort does
    except MalformedContent:
        pass
    else:
        pytest.fail("the ragged row was not reported")
    # WHEN everything the conversion left is garbage collected
    gc.collect()
    # THEN row groups had been written before the bad row, but no footer after the failure
    assert written
    assert late == []


# --- typed mode: data contracts -------------------------------------------------------------

CONTRACTS = """
[settings]
unmatched = "text"

[contracts.orders]
match = { prefixes = ["in/"] }
outputs = ["jsonl", "parquet"]
on_error = {on_error}

[[contracts.orders.columns]]
name = "id"
type = "int"
nullable = false

[[contracts.orders.columns]]
name = "amount"
type = "float"

[[contracts.orders.columns]]
name = "placed_at"
type = "timestamp"

[[contracts.orders.columns]]
name = "day"
type = "date"

[[contracts.orders.columns]]
name = "paid"
type = "bool"

[[contracts.orders.columns]]
name = "note"
"""
REJECT = '{ policy = "reject" }'
DROP = '{ policy = "drop_rows", max_rejected_rows = 2 }'

ORDERS = (
    b"id,amount,placed_at,day,paid,note\n"
    b'1,1.5,2024-01-02T03:04:05Z,2024-01-02,true,"a, ""b"""\n'
    b"2,,2024-01-02 03:04:05+02:00,,no,\n"
    b"3,-2e3,,2024-02-29,0,x\n"
)


def typing(on_error: str) -> ContractTyping:
    contracts = parse_contracts(CONTRACTS.replace("{on_error}", on_error))
    return ContractTyping(contracts.get("orders"))


def test_typed_mode_writes_typed_parquet_and_json_lines() -> None:
    # GIVEN a contract with int, float, timestamp, date, bool and string columns
    out = both(ORDERS, typing=typing(REJECT))
    # THEN the Parquet columns have those types
    table = out.table()
    types = {f.name: f.type for f in table.schema}
    assert types["id"] == pa.int64()
    assert types["amount"] == pa.float64()
    assert types["placed_at"] == pa.timestamp("us", tz="UTC")
    assert types["day"] == pa.date32()
    assert types["paid"] == pa.bool_()
    assert pa.types.is_string(types["note"]) or pa.types.is_large_string(types["note"])
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert [r["amount"] for r in rows] == [1.5, None, -2000.0]  # empty -> null
    assert [r["placed_at"] and r["placed_at"].isoformat() for r in rows] == [
        "2024-01-02T03:04:05+00:00",
        "2024-01-02T01:04:05+00:00",  # converted to UTC
        None,
    ]
    assert [r["paid"] for r in rows] == [True, False, False]
    assert [r["note"] for r in rows] == ['a, "b"', "", "x"]  # strings: "" kept
    # AND the JSON Lines carry typed values too
    assert out.records()[0] == {
        "id": 1,
        "amount": 1.5,
        "placed_at": "2024-01-02T03:04:05+00:00",
        "day": "2024-01-02",
        "paid": True,
        "note": 'a, "b"',
    }
    assert (out.result.rows, out.result.rejected_rows) == (3, 0)
    assert out.rejected == b""


def test_typed_mode_reject_policy_names_row_and_column() -> None:
    # GIVEN a value that isn't an int in the 4th row (file row 5) of a file cut into chunks
    data = ORDERS + b"x4,1,,,,\n"
    with pytest.raises(ContractViolation) as err:
        both(data, typing=typing(REJECT), chunk_bytes=16)
    # THEN the violation names the row, the column and the value
    report = json.loads(str(err.value))
    assert report["contract"] == "orders"
    assert report["problems"] == [
        {"row": 5, "column": "id", "value": "x4", "reason": "not a valid int"}
    ]


def test_typed_mode_drop_rows_writes_rejected_rows_with_row_and_errors() -> None:
    # GIVEN two bad rows (file rows 3 and 6) among good ones, cut into small chunks
    data = (
        b"id,amount,placed_at,day,paid,note\n"
        b"1,1,,,,\n"
        b"2,abc,,,,\n"
        b"3,3,,,,\n"
        b"\n"
        b"4,4,,,,\n"
        b"5,5,2024-01-01T00:00:00,,maybe,\n"
    )
    for chunk_bytes in (1, 16, CHUNK_BYTES):
        out = both(data, typing=typing(DROP), chunk_bytes=chunk_bytes)
        # THEN the good rows are written, the bad ones go to the rejected sink
        assert [r["id"] for r in out.table().to_pylist()] == [1, 3, 4]
        assert [r["id"] for r in out.records()] == [1, 3, 4]
        assert (out.result.rows, out.result.rejected_rows) == (3, 2)
        rejected = records(out.rejected)
        # AND each rejected row keeps its text, its row number (blank lines not counted) and why
        assert rejected == [
            {
                "id": "2",
                "amount": "abc",
                "placed_at": "",
                "day": "",
                "paid": "",
                "note": "",
                "_row": 3,
                "_errors": "amount: not a valid float",
            },
            {
                "id": "5",
                "amount": "5",
                "placed_at": "2024-01-01T00:00:00",
                "day": "",
                "paid": "maybe",
                "note": "",
                "_row": 6,
                "_errors": "placed_at: not a valid timestamp; paid: not a valid bool",
            },
        ], chunk_bytes


def test_typed_mode_drop_rows_over_the_budget_rejects_the_file() -> None:
    data = b"id,amount,placed_at,day,paid,note\n" + b"x,,,,,\n" * 3
    with pytest.raises(ContractViolation, match="max_rejected_rows=2"):
        both(data, typing=typing(DROP))


def test_typed_mode_header_must_match_the_contract() -> None:
    sink_calls: list[bytes] = []
    with pytest.raises(ContractViolation, match="required column missing"):
        convert_stream(
            io.BytesIO(b"id,amount\n1,2\n"),
            EngineOptions(typing=typing(REJECT)),
            {"jsonl": sink_calls.append},
        )
    assert sink_calls == []


def test_typed_mode_is_the_same_under_any_splitting() -> None:
    rows = [ORDERS.split(b"\n", 1)[0] + b"\n"] + [
        b'%d,%d.5,2024-01-02T03:04:05Z,2024-01-02,yes,"n\n%d"\n' % (i, i, i) for i in range(120)
    ]
    data = b"".join(rows)
    first = both(data, typing=typing(REJECT))
    for chunk_bytes in (7, 1000):
        for workers in (1, 3):
            out = both(data, typing=typing(REJECT), chunk_bytes=chunk_bytes, workers=workers)
            assert out.jsonl == first.jsonl
            assert out.table().equals(first.table())
    assert first.result.rows == 120


@pytest.mark.parametrize("option", ["chunk_bytes", "workers", "max_record_bytes"])
def test_options_that_would_drop_data_are_refused(option: str) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        EngineOptions(**{option: 0})


@pytest.mark.parametrize("data", [b"", b"\n\n\r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n"])
def test_file_without_a_header(data: bytes) -> None:
    assert error_of(data) == "no header: the file has no content"


# --- no input crashes the worker -------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"a\x00b,c\n1,2\n", id="nul-in-a-column-name"),
        pytest.param("id,name\n1,x\n".encode("utf-16-le"), id="utf16le-without-bom"),
        pytest.param("id,name\n1,x\n".encode("utf-16-be"), id="utf16be-without-bom"),
    ],
)
def test_nul_bytes_in_the_header_are_a_named_error_not_a_native_panic(data: bytes) -> None:
    # GIVEN a header whose column names hold NUL bytes (Arrow's C schema can't carry them:
    # polars panicked, which killed the worker process)
    # WHEN it is converted to both formats THEN a MalformedContent names the header column
    message = error_of(data, outputs=("jsonl", "parquet"))
    assert message.startswith("header (row 1): column 1 has a NUL byte (0x00) in its name")


def test_nul_bytes_in_values_are_data() -> None:
    converted = both(b"id,name\n1,a\x00b\n2,\x00\n")
    assert converted.records() == [{"id": "1", "name": "a\x00b"}, {"id": "2", "name": "\x00"}]
    assert converted.table().to_pylist() == converted.records()


def test_a_native_panic_becomes_malformed_content(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a native core that panics on the content (pyo3's PanicException: a BaseException,
    # not an Exception; told by its name, as it can't be imported)
    class PanicException(BaseException):
        pass

    class Panicking:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def feed(self, block: bytes) -> Any:
            raise PanicException("called `Option::unwrap()` on a `None` value\nmore")

    monkeypatch.setattr(engine.chute_native, "Converter", Panicking)
    # WHEN it is converted THEN a named permanent error, with the panic's first line only
    assert error_of(ORDERS, typing=typing(REJECT)) == (
        "the content can't be converted: the parser failed on it"
        " (called `Option::unwrap()` on a `None` value)"
    )


# --- decompression limits --------------------------------------------------------------------
def rows_of_zeros(rows: int) -> bytes:
    return b"a,b\n" + b"0,0\n" * rows


COMPRESSORS = {
    "gzip": lambda data: gzip.compress(data, 9),
    "zstd": lambda data: zstandard.ZstdCompressor(level=19).compress(data),
    "bz2": lambda data: bz2.compress(data, 9),
}


def limits(**values: int) -> Any:
    from tasks.settings import DecompressionLimits

    return DecompressionLimits(**values)


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_a_decompression_bomb_is_stopped_while_streaming(kind: Compression) -> None:
    from tasks.errors import DecompressionLimitExceeded

    # GIVEN 16 MiB of rows compressed more than 200:1, and a 1 MiB grace
    content = rows_of_zeros(4 * 1024 * 1024)
    compressed = COMPRESSORS[kind](content)
    assert len(content) > 200 * len(compressed)
    written: list[bytes] = []
    options = EngineOptions(
        outputs=("jsonl",),
        compression=kind,
        chunk_bytes=256 * 1024,
        limits=limits(max_ratio=200, grace_bytes=1024 * 1024),
    )
    # WHEN it is converted THEN it stops soon after the grace, with a named permanent error
    with pytest.raises(DecompressionLimitExceeded, match="expands more than 200 times"):
        convert_stream(io.BytesIO(compressed), options, {"jsonl": written.append})
    whole = len(content) * len(b'{"a":"0","b":"0"}\n') // len(b"0,0\n")  # ~72 MiB of JSON Lines
    assert sum(map(len, written)) < whole // 4


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_content_over_the_decompressed_size_limit_is_stopped(kind: Compression) -> None:
    from tasks.errors import DecompressionLimitExceeded

    content = os.urandom(1024 * 1024).hex().encode()  # 2 MiB, compresses ~2:1
    data = b"h\n" + b"\n".join(content[i : i + 64] for i in range(0, len(content), 64))
    options = EngineOptions(
        compression=kind, chunk_bytes=64 * 1024, limits=limits(max_bytes=1024 * 1024)
    )
    with pytest.raises(DecompressionLimitExceeded, match="larger than the limit of 1048576"):
        convert_stream(io.BytesIO(COMPRESSORS[kind](data)), options, {"jsonl": _discard})


def test_small_files_expand_freely_within_the_grace() -> None:
    # GIVEN a file that expands ~1000:1 but stays under the grace
    data = rows_of_zeros(100_000)
    options = EngineOptions(compression="gzip", limits=limits(max_ratio=10))
    # THEN it converts
    result = convert_stream(io.BytesIO(gzip.compress(data, 9)), options, {"jsonl": _discard})
    assert result.rows == 100_000


def test_plain_files_are_not_limited() -> None:
    options = EngineOptions(limits=limits(max_bytes=10))
    result = convert_stream(io.BytesIO(rows_of_zeros(100)), options, {"jsonl": _discard})
    assert result.rows == 100


def _discard(data: bytes) -> None:
    pass
