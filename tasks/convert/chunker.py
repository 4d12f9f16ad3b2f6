"""Split a CSV byte stream into chunks that end on record boundaries, in bounded memory.

A newline ends a record unless it lies inside a quoted field. Inside or outside is told by the
parity of the quote characters before it: an escaped quote ("") adds two and keeps the parity,
so counting quotes (a C-speed ``bytes.count``) is exact for RFC 4180 quoting, however the
stream is cut. Each chunk can then be parsed on its own, in parallel.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

MAX_RECORD_BYTES = 64 * 1024 * 1024
"""Longest record accepted: what bounds memory when a quote is never closed."""


class UnterminatedQuote(ValueError):
    """The stream ended inside a quoted field."""


class RecordTooLong(ValueError):
    """A record (or a quote never closed) longer than the limit."""


def records(
    source: BinaryIO,
    chunk_bytes: int,
    quote: bytes = b'"',
    max_record: int = MAX_RECORD_BYTES,
) -> Iterator[bytes]:
    """Chunks of whole records (each but the last ends with a newline), about ``chunk_bytes``
    each; a single record longer than that is returned whole, up to ``max_record`` bytes.

    Raises UnterminatedQuote / RecordTooLong; the record at fault is then the first one after
    the chunks yielded so far."""
    carry = b""
    while True:
        block = source.read(chunk_bytes)
        if not block:
            break
        data = carry + block if carry else block
        cut = _last_boundary(data, quote)
        if cut <= 0:
            if len(data) > max_record:
                raise RecordTooLong(
                    f"a record longer than {max_record} bytes (a quote never closed?)"
                )
            carry = data  # no complete record yet: read more
            continue
        yield data[:cut]
        carry = data[cut:]
    if carry:
        if carry.count(quote) % 2:
            raise UnterminatedQuote("the file ends inside a quoted field")
        yield carry


def _last_boundary(data: bytes, quote: bytes) -> int:
    """Index just after the last newline outside quotes, or 0 if there is none."""
    end = data.rfind(b"\n")
    if end < 0:
        return 0
    inside = data.count(quote, 0, end) % 2
    while inside:
        previous = data.rfind(b"\n", 0, end)
        if previous < 0:
            return 0
        inside ^= data.count(quote, previous, end) % 2
        end = previous
    return end + 1


def first_record(
    source: BinaryIO, quote: bytes = b'"', limit: int = 1 << 20
) -> tuple[bytes, bytes]:
    """The first record that isn't a blank line (the header, without its line ending) and the
    bytes read past it; ``b""`` for an empty or all-blank stream."""
    data = b""
    begin = 0  # where the record starts (after blank lines)
    start = 0
    while True:
        block = source.read(64 * 1024)
        data += block
        position = start
        while True:
            newline = data.find(b"\n", position)
            if newline < 0:
                break
            if data.count(quote, begin, newline) % 2 == 0:
                record = data[begin:newline].rstrip(b"\r")
                if record:
                    return record, data[newline + 1 :]
                begin = newline + 1  # a blank line before the header: skipped
            position = newline + 1
        start = len(data)
        if not block:
            return data[begin:].rstrip(b"\r\n"), b""
        if len(data) > limit:
            raise UnterminatedQuote(f"no end of the header line in the first {limit} bytes")
