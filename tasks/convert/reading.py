"""Reading a source for the engine: decompressed (within the decompression limits), its header
parsed and checked, the delimiter sniffed; read errors sorted into bad content
(MalformedContent) and the rest (a network error keeps its type, for the caller to classify).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, cast

from isal.igzip_lib import IsalError
from zstandard import ZstdError

from tasks.convert import chunker, dialect
from tasks.convert.compression import open_decompressed, read_into
from tasks.errors import MalformedContent
from tasks.formats import Compression
from tasks.settings import DecompressionLimits

BOM = codecs.BOM_UTF8


@dataclass(frozen=True)
class Opened:
    """A source read up to its header: the decompressed stream after what was read."""

    stream: BinaryIO
    compression: Compression
    header: list[str]
    delimiter: str
    rest: bytes
    """Bytes read past the header (the data's first bytes)."""


def open_source(
    source: BinaryIO,
    *,
    compression: Compression | None,
    limits: DecompressionLimits | None,
    delimiter: str | None,
    quote: str,
) -> Opened:
    """Decompress ``source`` and read its header (``delimiter`` None: sniffed from it)."""
    stream, found = open_decompressed(source, compression, limits)
    with content_errors("the header"):
        header_bytes, rest = chunker.first_record(stream, quote=quote.encode())
    if header_bytes.startswith(BOM):
        header_bytes = header_bytes[len(BOM) :]
    if not header_bytes.strip():
        raise MalformedContent("no header: the file has no content")
    delimiter = delimiter or dialect.sniff(header_bytes, quote=quote.encode())
    header = parse_header(header_bytes, delimiter, quote)
    return Opened(stream, found, header, delimiter, rest)


def blocks(opened: Opened, size: int) -> Iterator[memoryview | bytes]:
    """The data in blocks of ``size`` bytes (what was read with the header first, cut so). The
    blocks after it are read into one buffer, used again for the next block: use a block before
    taking the next (the engine's feed copies what it keeps)."""
    rest = opened.rest
    for start in range(0, len(rest), size):
        yield rest[start : start + size]
    buffer = memoryview(bytearray(size))
    while True:
        with content_errors("the data"):
            filled = _fill(opened.stream, buffer)
        if not filled:
            return
        yield buffer[:filled]


def _fill(stream: BinaryIO, buffer: memoryview) -> int:
    """Read into ``buffer`` until it is full or the stream ends (a stream may give less than
    asked: small blocks would make small chunks); the bytes read."""
    filled = 0
    while filled < len(buffer):
        n = read_into(stream, buffer[filled:])
        if not n:
            break
        filled += n
    return filled


def parse_header(raw: bytes, delimiter: str, quote: str) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedContent("header (row 1): not valid UTF-8") from exc
    try:
        header = next(csv.reader([text], delimiter=delimiter, quotechar=quote, strict=True))
    except csv.Error as exc:
        raise MalformedContent(f"header (row 1): cannot parse: {exc}") from exc
    seen: dict[str, int] = {}
    for index, name in enumerate(header, start=1):
        if not name:
            raise MalformedContent(f"header (row 1): column {index} has an empty name")
        if "\x00" in name:  # Arrow's C interface can't carry it (polars would panic)
            raise MalformedContent(
                f"header (row 1): column {index} has a NUL byte (0x00) in its name"
                " (is the file UTF-16 or binary?)"
            )
        if name in seen:
            raise MalformedContent(
                f"header (row 1): duplicate column name {name!r} (columns {seen[name]} and {index})"
            )
        seen[name] = index
    return header


_READ_ERRORS: tuple[type[BaseException], ...] = (
    chunker.UnterminatedQuote,
    OSError,
    EOFError,
    ZstdError,
    cast(type[BaseException], IsalError),  # untyped; not an OSError
)


@contextlib.contextmanager
def content_errors(where: str) -> Iterator[None]:
    """Decompression failures while reading ``where`` become MalformedContent."""
    try:
        yield
    except _READ_ERRORS as exc:
        error = _content_error(exc, where)
        if error is exc:  # e.g. a network error: keeps its type for the caller to classify
            raise
        raise error from exc


def _content_error(exc: BaseException, where: str) -> Exception:
    """Decompression failures are bad files; other OSErrors (network) keep their type."""
    name = type(exc).__name__
    if name in {"BadGzipFile", "ZstdError", "IsalError", "error"} or isinstance(exc, EOFError):
        return MalformedContent(f"corrupt or truncated compressed data in {where}: {exc}")
    if isinstance(exc, OSError) and "Invalid data stream" in str(exc):  # bz2
        return MalformedContent(f"corrupt compressed data in {where}: {exc}")
    if isinstance(exc, chunker.UnterminatedQuote):
        return MalformedContent(f"cannot parse {where}: {exc}")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))
