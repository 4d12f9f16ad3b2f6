"""The conversion engine: CSV/TSV (optionally gzip) in, JSON Lines out, streamed.

Pure (no AWS): it reads a binary stream and hands output blocks to a sink, so the same code runs
in Lambda, in the Batch container and in tests. Memory does not depend on the file's size: input
is decoded in chunks and output is handed over in blocks of about ``BLOCK_BYTES``.

Text mode keeps every value exactly as written (an empty field is ``""``, never ``null``; no type
inference), header names are the keys, in header order.

Rows are numbered the way people count lines in a spreadsheet: the header is row 1, the first
data row is row 2; fully empty lines are skipped and not counted. Error messages also give the
physical line where the row starts (they differ when quoted fields contain newlines).

This function is the seam a faster engine (polars/pyarrow, Parquet, data contracts) replaces.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO, cast

import orjson
from isal import igzip, isal_zlib

from tasks.errors import MalformedContent
from tasks.models import FileSpec

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

BLOCK_BYTES = 1024 * 1024
"""Output is handed to the sink in blocks of about this size."""

READ_BYTES = 256 * 1024
"""Read size for uncompressed sources (gzip sources use isal's own buffering)."""

MAX_FIELD_CHARS = 16 * 1024 * 1024
"""Longest field accepted; also what bounds memory when a quote is never closed."""

# Every way a broken gzip stream shows itself (isal's igzip mirrors the stdlib gzip module).
# Deliberately not OSError in general: a network error while reading the source (botocore's
# ReadTimeoutError is an OSError) is not a bad file and must keep its own type.
_ISAL_ERROR = cast("type[Exception]", isal_zlib.error)  # its stub declares an instance
_GZIP_ERRORS = (igzip.BadGzipFile, EOFError, _ISAL_ERROR)


class _Reader(io.RawIOBase):
    """Any object with ``read(n)`` as a raw stream, so io's buffering and decoding can sit on it."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._source.read(len(view))
        view[: len(data)] = data
        return len(data)


def _binary(source: BinaryIO, spec: FileSpec) -> io.BufferedReader | gzip.GzipFile:
    if spec.compression == "gzip":
        return igzip.IGzipFile(fileobj=source, mode="rb")  # type: ignore[no-untyped-call]
    return io.BufferedReader(_Reader(source), buffer_size=READ_BYTES)


class _Rows:
    """Parsed records with their row number and starting line; empty lines skipped."""

    def __init__(self, text: io.TextIOWrapper, delimiter: str) -> None:
        self._reader = csv.reader(text, delimiter=delimiter, strict=True)
        self.row = 0  # number of the last record returned (header = 1)
        self.line = 0  # physical line where that record starts

    def where(self) -> str:
        return f"row {self.row} (line {self.line})"

    def __iter__(self) -> Iterator[list[str]]:
        reader = self._reader
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise MalformedContent(
                    f"row {self.row + 1} (line {start}): cannot parse: {exc}"
                ) from exc
            except _GZIP_ERRORS as exc:
                raise MalformedContent(
                    f"corrupt or truncated gzip data near row {self.row + 1}: {exc}"
                ) from exc
            if not record:
                continue
            self.row += 1
            self.line = start
            yield record


def _header(rows: _Rows, iterator: Iterator[list[str]]) -> list[str]:
    header = next(iterator, None)
    if header is None:
        raise MalformedContent("no header: the file has no content")
    seen: dict[str, int] = {}
    for index, name in enumerate(header, start=1):
        if not name:
            raise MalformedContent(f"header (row 1): column {index} has an empty name")
        if not _is_utf8(name):
            raise MalformedContent(f"header (row 1): column {index} is not valid UTF-8")
        if name in seen:
            raise MalformedContent(
                f"header (row 1): duplicate column name {name!r} (columns {seen[name]} and {index})"
            )
        seen[name] = index
    return header


def _is_utf8(text: str) -> bool:
    # Undecodable bytes arrive as lone surrogates (errors="surrogateescape").
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def convert_stream(source: BinaryIO, spec: FileSpec, sink: Callable[[bytes], None]) -> int:
    """Convert ``source`` (read as ``spec`` says) to JSON Lines handed to ``sink``; return the
    number of data rows written.

    Raises MalformedContent (a PermanentError) for content that can't be converted: corrupt or
    truncated gzip, bytes that aren't UTF-8, unparseable quoting, a row whose field count differs
    from the header's, an empty file, an empty or duplicate header name. ``sink`` may have
    received part of the output by then: the caller discards it (the S3 writer aborts).
    """
    if csv.field_size_limit() < MAX_FIELD_CHARS:  # process-wide; the stdlib default is 128 KiB
        csv.field_size_limit(MAX_FIELD_CHARS)
    # utf-8-sig drops a leading BOM; surrogateescape defers invalid bytes to the row that holds
    # them, so the error names the exact row instead of the chunk being decoded.
    text = io.TextIOWrapper(
        _binary(source, spec), encoding="utf-8-sig", errors="surrogateescape", newline=""
    )
    rows = _Rows(text, spec.delimiter)
    iterator = iter(rows)
    header = _header(rows, iterator)
    width = len(header)
    dumps = orjson.dumps
    option = orjson.OPT_APPEND_NEWLINE
    block = bytearray()
    count = 0
    for record in iterator:
        if len(record) != width:
            raise MalformedContent(
                f"{rows.where()}: expected {width} fields as in the header, found {len(record)}"
            )
        try:
            block += dumps(dict(zip(header, record, strict=True)), option=option)
        except orjson.JSONEncodeError as exc:
            raise MalformedContent(f"{rows.where()}: not valid UTF-8") from exc
        count += 1
        if len(block) >= BLOCK_BYTES:
            sink(bytes(block))
            block.clear()
    if block:
        sink(bytes(block))
    return count
