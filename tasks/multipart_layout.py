"""One object from byte ranges of other objects: the parts of a multipart upload (pure).

S3 joins objects server-side with UploadPartCopy, but every part except the last must be at
least 5 MiB and at most 5 GiB, and there are at most 10,000 parts. Ranges of 5 MiB or more are
copied (in pieces of at most ``max_copy``); smaller ones — a part's short output, the first
bytes needed to bring a run of small ones up to 5 MiB — are read and uploaded as bytes, with the
trailing bytes (a Parquet footer) in the last part. Memory: at most one part of bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.s3_limits import MAX_PARTS, MIN_PART_BYTES

MAX_COPY_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Piece:
    """Bytes ``[start, end)`` of object ``key``."""

    key: str
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Copy:
    """A part copied server-side (UploadPartCopy)."""

    piece: Piece


@dataclass(frozen=True)
class Upload:
    """A part uploaded as bytes: the pieces read, in order, then ``tail``."""

    pieces: tuple[Piece, ...]
    tail: bytes = b""

    @property
    def size(self) -> int:
        return sum(p.size for p in self.pieces) + len(self.tail)


Part = Copy | Upload


class TooManyParts(ValueError):
    """The object would need more than S3's 10,000 parts."""


def layout(
    pieces: list[Piece],
    tail: bytes = b"",
    *,
    min_part: int = MIN_PART_BYTES,
    max_copy: int = MAX_COPY_BYTES,
) -> list[Part]:
    """The parts that make the pieces (then ``tail``) one object, in order."""
    parts: list[Part] = []
    pending: list[Piece] = []
    filled = 0
    for piece in (p for p in pieces if p.size > 0):
        if filled:  # bring the bytes waiting up to a whole part first
            take = min(piece.size, min_part - filled)
            pending.append(Piece(piece.key, piece.start, piece.start + take))
            filled += take
            piece = Piece(piece.key, piece.start + take, piece.end)
            if filled >= min_part:
                parts.append(Upload(tuple(pending)))
                pending, filled = [], 0
        if piece.size >= min_part:
            parts.extend(Copy(p) for p in _split(piece, min_part, max_copy))
        elif piece.size > 0:
            pending.append(piece)
            filled += piece.size
    if pending or tail or not parts:
        parts.append(Upload(tuple(pending), tail))
    if len(parts) > MAX_PARTS:
        raise TooManyParts(f"{len(parts)} parts: S3 takes at most {MAX_PARTS}")
    return parts


def _split(piece: Piece, min_part: int, max_copy: int) -> list[Piece]:
    """``piece`` in copies of at most ``max_copy`` bytes (the last one may be up to
    ``max_copy + min_part``: never a copy under ``min_part``)."""
    out: list[Piece] = []
    start = piece.start
    while piece.end - start > max_copy + min_part:
        out.append(Piece(piece.key, start, start + max_copy))
        start += max_copy
    out.append(Piece(piece.key, start, piece.end))
    return out
