"""Cutting a file into record-aligned parts from a few KB at each cut (tasks.fanout.cuts)."""

from __future__ import annotations

import csv
import io
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.fanout.cuts import Dialect, Part, find_cut, merge_after, plan

COMMA = Dialect(delimiter=b",", quote=b'"', columns=3)


def _field(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return str(rng.randint(-1000, 100000))
    if kind < 0.7:
        return rng.choice(["alpha", "beta", "", "x y z"])
    # quoted: newlines (also CRLF), delimiters, escaped quotes, lines that look like records
    parts = ["a\nb", "1,2,3\n4,5,6", 'say ""hi""', "\r\n", '"",""', "end\n"]
    return '"' + "".join(rng.choice(parts) for _ in range(rng.randint(1, 4))) + '"'


def csv_file(rows: int, seed: int, crlf: bool = False) -> bytes:
    rng = random.Random(seed)
    eol = "\r\n" if crlf else "\n"
    lines = ["id,name,note"]
    for _ in range(rows):
        lines.append(",".join(_field(rng) for _ in range(3)))
        if rng.random() < 0.02:
            lines.append("")  # an empty line between records
    return (eol.join(lines) + (eol if rng.random() < 0.5 else "")).encode()


def boundaries(data: bytes) -> set[int]:
    """Every offset where a record starts (after a newline outside quotes), by Python's csv."""
    text = data.decode()
    found = set()
    inside = False
    for i, ch in enumerate(text):
        if ch == '"':
            inside = not inside
        elif ch == "\n" and not inside:
            found.add(len(text[: i + 1].encode()))
    return found


def records(data: bytes) -> list[list[str]]:
    return [r for r in csv.reader(io.StringIO(data.decode(), newline=""), strict=True) if r]


def _plan(data: bytes, part_bytes: int) -> list[Part]:
    header_end = data.index(b"\n") + 1
    return plan(len(data), header_end, part_bytes, lambda a, b: data[a:b], COMMA)


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_cuts_fall_on_record_boundaries_and_parts_hold_every_record(seed: int, crlf: bool) -> None:
    data = csv_file(400, seed, crlf)
    header_end = data.index(b"\n") + 1
    part_bytes = random.Random(seed).randint(200, 3000)
    parts = _plan(data, part_bytes)
    assert parts[0].start == header_end and parts[-1].end == len(data)
    assert all(a.end == b.start for a, b in itertools.pairwise(parts))
    assert [p.index for p in parts] == list(range(len(parts)))
    assert len(parts) > 1
    truth = boundaries(data)
    assert {p.start for p in parts[1:]} <= truth
    header = data[:header_end]
    assert [r for p in parts for r in records(header + data[p.start : p.end])[1:]] == records(data)[
        1:
    ]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), part_bytes=st.integers(1, 500))
def test_any_part_size(seed: int, part_bytes: int) -> None:
    data = csv_file(60, seed)
    parts = _plan(data, part_bytes)
    assert {p.start for p in parts[1:]} <= boundaries(data)
    assert sum(p.end - p.start for p in parts) == len(data) - (data.index(b"\n") + 1)


@pytest.mark.parametrize(("seed", "part_bytes"), [(2151, 15), (595, 5), (805, 1)])
def test_no_cut_is_guessed_where_the_file_ends_before_the_guesses_part(
    seed: int, part_bytes: int
) -> None:
    # GIVEN files whose last bytes read as whole records from outside quotes and as the rest
    # of a quoted field from inside (hypothesis found them: each cut there split a field)
    data = csv_file(60, seed)
    # THEN no cut is put where the file ends before the two readings can be told apart
    parts = _plan(data, part_bytes)
    assert {p.start for p in parts[1:]} <= boundaries(data)
    assert sum(p.end - p.start for p in parts) == len(data) - (data.index(b"\n") + 1)


def test_reads_only_windows_near_the_cuts() -> None:
    data = csv_file(100_000, 1)
    read: list[tuple[int, int]] = []

    def window(a: int, b: int) -> bytes:
        read.append((a, b))
        return data[a:b]

    header_end = data.index(b"\n") + 1
    parts = plan(len(data), header_end, len(data) // 8, window, COMMA)
    assert len(parts) == 8
    assert sum(b - a for a, b in read) <= 8 * 64 * 1024
    assert sum(b - a for a, b in read) < len(data) / 4


def test_a_record_longer_than_the_window_is_found_by_growing_it() -> None:
    long_field = '"' + ("x\n" * 100_000) + '"'
    data = f"a,b,c\n1,2,3\n4,{long_field},6\n7,8,9\n".encode()
    cut = find_cut(20, len(data), lambda a, b: data[a:b], COMMA, max_window=1 << 20)
    assert cut == len(data) - len(b"7,8,9\n")


def test_no_boundary_within_the_limit_skips_the_cut() -> None:
    data = ("a,b,c\n1," + '"' + "y" * 300_000 + '"' + ",3\n").encode()
    assert _plan(data, 1000) == [Part(0, 6, len(data))]


def test_a_ragged_region_is_not_cut() -> None:
    data = b"a,b,c\n" + b"1,2\n" * 5000  # no record there has the header's 3 fields
    assert len(_plan(data, 1000)) == 1


def test_other_delimiter_and_quote() -> None:
    data = b"a;b;c\n" + b"".join(b"%d;'x\ny;z';3\n" % i for i in range(2000))
    dialect = Dialect(delimiter=b";", quote=b"'", columns=3)
    parts = plan(len(data), 6, 1000, lambda a, b: data[a:b], dialect)
    assert len(parts) > 10
    assert all(data[p.start - 1 : p.start] == b"\n" for p in parts[1:])
    assert all(data[p.start : p.start + 1].isdigit() for p in parts[1:])


def test_merge_after() -> None:
    parts = [Part(0, 10, 20), Part(1, 20, 30), Part(2, 30, 40)]
    assert merge_after(parts, 0) == [Part(0, 10, 30), Part(2, 30, 40)]
    assert merge_after(parts, 1) == [Part(0, 10, 20), Part(1, 20, 40)]
    with pytest.raises(ValueError, match="no part after"):
        merge_after(parts, 2)
    assert Part.from_dict(parts[1].to_dict()) == parts[1]
