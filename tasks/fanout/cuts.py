"""Cutting one delimited file into record-aligned byte ranges, reading a few KB at each cut.

A cut must fall between two records. Looking only at the bytes near a nominal cut, the one
thing that can't be known is whether that point is inside a quoted field (a quoted field may
hold newlines). So, as in speculative distributed CSV parsing (Ge et al., SIGMOD 2019): guess.
For each of the two possible states at the window's start — outside or inside quotes — scan
forward to the first newline outside quotes and check that the records after it parse with the
header's field count. A state whose records don't fit is ruled out. What remains is the guess;
the parts' conversion verifies it exactly (a part that started on a record boundary and ends
inside a quoted field proves the next cut wrong, and the two parts are converted as one:
:func:`merge_after`).

Pure: the caller reads the windows (:class:`Window`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_BYTES = 64 * 1024
"""Bytes read at each cut to start with; doubled (up to ``max_window``) when no record ends."""
MAX_WINDOW = 16 * 1024 * 1024
"""Bytes read at a cut at most: no record ends there, the cut is skipped."""
CHECK_RECORDS = 4
"""Records after a candidate cut that must parse with the header's field count, at least (every
complete record of the window is checked)."""


@dataclass(frozen=True)
class Part:
    """Bytes ``[start, end)`` of the source: whole records (the header is not in any part).

    A compressed source cut between its frames (tasks.fanout.frames): what ``[start, end)``
    decompress to less their first ``skip`` bytes, then the first ``take`` bytes of what
    ``[end, stop)`` (the frame the next part starts in) decompress to."""

    index: int
    start: int
    end: int
    skip: int = 0
    take: int = 0
    stop: int = 0

    def to_dict(self) -> dict[str, int]:
        plain = {"index": self.index, "start": self.start, "end": self.end}
        if not (self.skip or self.take or self.stop):  # a part of an uncompressed source
            return plain
        return {**plain, "skip": self.skip, "take": self.take, "stop": self.stop}

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> Part:
        return cls(
            index=int(data["index"]),
            start=int(data["start"]),
            end=int(data["end"]),
            skip=int(data.get("skip", 0)),
            take=int(data.get("take", 0)),
            stop=int(data.get("stop", 0)),
        )


Read = Callable[[int, int], bytes]
"""``read(start, end)``: bytes ``[start, end)`` of the source (fewer at its end)."""


@dataclass(frozen=True)
class Dialect:
    delimiter: bytes
    quote: bytes
    columns: int


def plan(
    size: int,
    data_start: int,
    part_bytes: int,
    read: Read,
    dialect: Dialect,
    *,
    max_window: int = MAX_WINDOW,
) -> list[Part]:
    """Record-aligned parts of about ``part_bytes`` covering ``[data_start, size)``. A nominal
    cut where no record boundary can be found (no newline within ``max_window``, or records
    there that don't parse) is skipped: the parts around it become one."""
    if part_bytes < 1:
        raise ValueError("part_bytes must be at least 1")
    cuts = [data_start]
    nominal = data_start + part_bytes
    while nominal < size:
        cut = find_cut(nominal, size, read, dialect, max_window=max_window)
        if cut is not None and cuts[-1] < cut < size:
            cuts.append(cut)
        nominal = max(nominal + part_bytes, (cut or 0) + 1)
    cuts.append(size)
    return [Part(i, a, b) for i, (a, b) in enumerate(itertools.pairwise(cuts)) if a < b]


def find_cut(
    nominal: int, size: int, read: Read, dialect: Dialect, *, max_window: int
) -> int | None:
    """The first record boundary at or after ``nominal`` (the byte after a record's newline)."""
    window = WINDOW_BYTES
    while True:
        data = read(nominal, min(size, nominal + window))
        at_end = nominal + len(data) >= size
        found = [_candidate(data, inside, dialect, at_end) for inside in (False, True)]
        viable = {c for c in found if c is not None and c >= 0}
        undecided = any(c is not None and c < 0 for c in found)
        if at_end and undecided:
            # the guess that meets no boundary before the file's end reads the rest as one
            # record, which nothing after it can rule out: no cut rather than a guess
            return None
        if len(viable) == 1:
            return nominal + viable.pop()
        if not viable and not undecided:
            return None  # both guesses ruled out
        # unsettled, or both guesses fit with different cuts: more bytes decide; at the
        # window's limit, no cut here rather than a guess
        if at_end or window >= max_window:
            return None
        window *= 2


def _candidate(data: bytes, inside: bool, dialect: Dialect, at_end: bool) -> int | None:
    """Assuming quote state ``inside`` at ``data[0]``: the offset after the first newline outside
    quotes if the records after it check out; None if they don't (the guess is ruled out);
    -1 if the window is too short to tell."""
    quote = dialect.quote[0]
    i = 0
    n = len(data)
    while i < n:
        byte = data[i]
        if byte == quote:
            inside = not inside
        elif byte == 0x0A and not inside:
            cut = i + 1
            verdict = _check(data, cut, dialect, at_end)
            if verdict is None:
                return None
            return cut if verdict else -1
        i += 1
    return -1


def _check(data: bytes, start: int, dialect: Dialect, at_end: bool) -> bool | None:
    """Whether the records from ``start`` to the window's end parse with the header's field
    count: True (at least CHECK_RECORDS did, or the file ended), False (undecided: too few in the
    window), None (a record doesn't fit: the guess is ruled out)."""
    checked = 0
    i = start
    n = len(data)
    while True:  # every record the window holds: a wrong guess rarely survives a whole window
        if i >= n:
            return True if at_end else checked >= CHECK_RECORDS
        end, fields = _record(data, i, dialect)
        if end is None:  # the window ended inside this record
            if at_end:  # the file's last record, without a newline: it must fit too
                return True if fields == dialect.columns else None
            return checked >= CHECK_RECORDS
        if fields != 0 and fields != dialect.columns:
            return None
        checked += fields != 0
        i = end


def _record(data: bytes, i: int, dialect: Dialect) -> tuple[int | None, int]:
    """Parse one record from ``i``: (offset after its newline or None if the data ends first,
    number of fields — 0 for an empty line, -1 for a malformed quoted field)."""
    quote, delimiter = dialect.quote[0], dialect.delimiter[0]
    n = len(data)
    if data[i] == 0x0A or data[i : i + 2] == b"\r\n":
        return (i + (1 if data[i] == 0x0A else 2)), 0
    fields = 1
    while i < n:
        if data[i] == quote:  # a quoted field: up to its closing quote ("" is a quote in it)
            i += 1
            while True:
                j = data.find(dialect.quote, i)
                if j < 0:
                    return None, fields
                if j + 1 < n and data[j + 1] == quote:
                    i = j + 2
                    continue
                i = j + 1
                break
            if i >= n:
                return None, fields
            if data[i] not in (delimiter, 0x0A, 0x0D):
                return i, -1  # something after the closing quote: not this dialect's record
        while i < n and data[i] not in (delimiter, 0x0A):
            if data[i] == quote:  # legal in a record, but a writer would have quoted the field:
                return i, -1  # as a guess, it rules the state out
            i += 1
        if i >= n:
            return None, fields
        if data[i] == 0x0A:
            return i + 1, fields
        fields += 1
        i += 1
    return None, fields


def merge_after(parts: list[Part], index: int) -> list[Part]:
    """The parts with the one at position ``index`` and the one after it joined (its end was
    not a record boundary). Parts keep their numbers (what they wrote is found by them); the
    joined one keeps the first's. The last part can't be joined to anything."""
    if not 0 <= index < len(parts) - 1:
        raise ValueError(f"part {index} has no part after it to join")
    first, second = parts[index], parts[index + 1]
    joined = Part(
        first.index, first.start, second.end, skip=first.skip, take=second.take, stop=second.stop
    )
    return [*parts[:index], joined, *parts[index + 2 :]]
