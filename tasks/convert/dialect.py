"""The delimiter: declared, or sniffed from the header line."""

from __future__ import annotations

from tasks.formats import DELIMITERS


def sniff(header: bytes, quote: bytes = b'"') -> str:
    """The candidate delimiter that occurs most often outside quotes in the header line
    (comma on a tie or when none occurs: a one-column file)."""
    outside = _outside_quotes(header, quote)
    counts = {d: outside.count(d.encode()) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _outside_quotes(line: bytes, quote: bytes) -> bytes:
    parts = line.split(quote)
    return b"".join(parts[0::2])
