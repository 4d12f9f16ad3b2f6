"""The header record of a CSV byte stream; the native core (native/src/split.rs) cuts the rest
into chunks of whole records with the same rule.

A newline ends a record unless it lies inside a quoted field. Inside or outside is told by the
parity of the quote characters before it: an escaped quote ("") adds two and keeps the parity,
so counting quotes is exact for RFC 4180 quoting, however the stream is cut.
"""

from __future__ import annotations

from typing import BinaryIO

MAX_RECORD_BYTES = 64 * 1024 * 1024
"""Longest record accepted: what bounds memory when a quote is never closed."""


class UnterminatedQuote(ValueError):
    """The stream ended inside a quoted field."""


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
