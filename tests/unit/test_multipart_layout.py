"""The multipart layout that joins byte ranges of objects (tasks.multipart_layout)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.multipart_layout import Copy, Piece, TooManyParts, Upload, layout

MIN = 100
MAX_COPY = 1000


def _bytes(key: str, n: int) -> bytes:
    return bytes((hash(key) + i) % 251 for i in range(n))


def rebuild(parts: list[Copy | Upload], objects: dict[str, bytes]) -> bytes:
    out = b""
    for part in parts:
        if isinstance(part, Copy):
            out += objects[part.piece.key][part.piece.start : part.piece.end]
        else:
            out += b"".join(objects[p.key][p.start : p.end] for p in part.pieces) + part.tail
    return out


def _size(part: Copy | Upload) -> int:
    return part.piece.size if isinstance(part, Copy) else part.size


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 3000), min_size=0, max_size=12),
    tail=st.binary(max_size=50),
    trim=st.integers(0, 10),
)
def test_parts_rebuild_the_pieces_and_respect_s3s_sizes(
    sizes: list[int], tail: bytes, trim: int
) -> None:
    objects = {f"k{i}": _bytes(f"k{i}", n) for i, n in enumerate(sizes)}
    pieces = [Piece(k, min(trim, len(v)), len(v)) for k, v in objects.items()]
    parts = layout(pieces, tail, min_part=MIN, max_copy=MAX_COPY)
    expected = b"".join(objects[p.key][p.start : p.end] for p in pieces) + tail
    assert rebuild(parts, objects) == expected
    assert parts, "at least one part (an empty object is one empty upload)"
    assert all(_size(p) >= MIN for p in parts[:-1])
    assert all(_size(p) <= MAX_COPY + MIN for p in parts if isinstance(p, Copy))
    assert all(_size(p) < 2 * MIN for p in parts if isinstance(p, Upload) and not p.tail)


def test_large_pieces_are_copied_server_side() -> None:
    parts = layout(
        [Piece("a", 0, 250), Piece("b", 4, 2600)], b"FOOTER", min_part=MIN, max_copy=MAX_COPY
    )
    assert parts == [
        Copy(Piece("a", 0, 250)),
        Copy(Piece("b", 4, 1004)),
        Copy(Piece("b", 1004, 2004)),
        Copy(Piece("b", 2004, 2600)),
        Upload((), b"FOOTER"),
    ]


def test_small_pieces_are_gathered() -> None:
    parts = layout(
        [Piece("a", 0, 60), Piece("b", 0, 60), Piece("c", 0, 500)], min_part=MIN, max_copy=MAX_COPY
    )
    assert parts == [
        Upload((Piece("a", 0, 60), Piece("b", 0, 40))),
        Upload((Piece("b", 40, 60), Piece("c", 0, 80))),
        Copy(Piece("c", 80, 500)),
    ]


def test_nothing_is_one_empty_part() -> None:
    assert layout([], min_part=MIN) == [Upload(())]


def test_too_many_parts() -> None:
    with pytest.raises(TooManyParts, match="at most 10000"):
        layout([Piece(f"k{i}", 0, MIN) for i in range(10_001)], min_part=MIN)
