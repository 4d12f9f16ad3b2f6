"""Where a zstd source can be cut: at its frames' boundaries (pure: the caller reads the bytes).

A zstd file is a sequence of frames, and each frame decompresses on its own. A file written as
many frames — pzstd, the seekable format, chunked writers, ``.zst`` files concatenated — can be
split between frames; one written as a single frame (the zstd CLI's default, multithreaded
too) can only be read from its start.

The frames are found, cheapest first:

- the **seekable format**'s seek table (a skippable frame at the file's end listing every
  frame's compressed and decompressed size): two short reads at the end;
- **pzstd**'s skippable frames, each holding the compressed size of the frame after it: one
  short read per frame;
- otherwise by following frame and block headers: the whole file is read (never decompressed),
  in reads growing to 8 MiB.

A frame larger than ``max_frame`` compressed bytes stops the search: such a file can't be cut
into parts of the size asked (a single-frame file is found out after ``max_frame`` bytes).

Parts (:class:`tasks.fanout.cuts.Part`) then run from a record boundary in one frame to a record
boundary in a later one: the bytes ``[start, end)`` decompressed less their first ``skip``
bytes, then the first ``take`` bytes of frame ``[end, stop)`` (:func:`plan`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from tasks.fanout.cuts import Part, Read

FRAME_MAGIC = 0xFD2FB528
SKIPPABLE_MASK = 0xFFFFFFF0
SKIPPABLE_MAGIC = 0x184D2A50
"""Skippable frames: magic 0x184D2A50-0x184D2A5F, a 4-byte size, that many bytes."""
SEEK_TABLE_MAGIC = 0x184D2A5E
SEEKABLE_FOOTER_MAGIC = 0x8F92EAB1
FOOTER_BYTES = 9
"""The seekable format's footer: number of frames (4), descriptor (1), magic (4)."""
FIRST_READ = 64 * 1024
LARGEST_READ = 8 * 1024 * 1024


@dataclass(frozen=True)
class Frame:
    """A zstd frame: compressed bytes ``[start, end)``; ``content`` its decompressed size, when
    the file says (the frame header's Frame_Content_Size, or the seek table)."""

    start: int
    end: int
    content: int | None = None

    @property
    def size(self) -> int:
        return self.end - self.start


class NotSplittable(ValueError):
    """The file can't be cut at frame boundaries (one frame, frames too large, or bytes that
    are not zstd frames); the message says which."""


def find_frames(size: int, read: Read, *, max_frame: int) -> list[Frame]:
    """The data frames of a zstd file of ``size`` bytes, in order (skippable frames left out:
    a part's range may hold some, the decompressor passes over them)."""
    frames = seek_table(size, read)
    if frames is None:
        frames = _walk(size, _Window(read, size), max_frame)
    largest = max(frames, key=lambda f: f.size, default=None)
    if largest is not None and largest.size > max_frame:
        raise NotSplittable(
            f"a zstd frame of {largest.size} bytes or more at byte {largest.start}: frames must "
            f"be at most {max_frame} bytes (the part size) to cut the file between them"
        )
    if len(frames) < 2:
        raise NotSplittable("a single zstd frame")
    return frames


def _u32(data: bytes, at: int = 0) -> int:
    return int.from_bytes(data[at : at + 4], "little")


def seek_table(size: int, read: Read) -> list[Frame] | None:
    """The frames the seekable format's seek table lists, or None when the file has none (or
    one that doesn't describe it)."""
    if size < FOOTER_BYTES + 8:
        return None
    footer = read(size - FOOTER_BYTES, size)
    if len(footer) != FOOTER_BYTES or _u32(footer, 5) != SEEKABLE_FOOTER_MAGIC:
        return None
    count, descriptor = _u32(footer), footer[4]
    entry = 12 if descriptor & 0x80 else 8
    table = 8 + count * entry + FOOTER_BYTES
    if count == 0 or table > size:
        return None
    data = read(size - table, size - FOOTER_BYTES)
    if _u32(data) != SEEK_TABLE_MAGIC or _u32(data, 4) != table - 8:
        return None
    frames, position = [], 0
    for i in range(count):
        at = 8 + i * entry
        compressed, content = _u32(data, at), _u32(data, at + 4)
        frames.append(Frame(position, position + compressed, content))
        position += compressed
    return frames if position == size - table else None


class _Window:
    """Random reads of a few bytes, served from windows read ahead: small after a jump (pzstd's
    hops from frame to frame), doubling while reads go forward nearby (block headers)."""

    def __init__(self, read: Read, size: int) -> None:
        self._read = read
        self._size = size
        self._start = self._end = 0
        self._data = b""
        self._next = FIRST_READ

    def get(self, position: int, length: int) -> bytes:
        if not (self._start <= position and position + length <= self._end):
            nearby = self._end <= position < self._end + self._next
            self._next = min(self._next * 2, LARGEST_READ) if nearby else FIRST_READ
            want = max(self._next, length)
            self._data = self._read(position, min(self._size, position + want))
            self._start, self._end = position, position + len(self._data)
            if len(self._data) < length:
                raise NotSplittable(f"the zstd data ends inside a header at byte {position}")
        offset = position - self._start
        return self._data[offset : offset + length]


def _walk(size: int, window: _Window, max_frame: int) -> list[Frame]:
    frames: list[Frame] = []
    position = 0
    hinted: int | None = None  # pzstd: the next frame's size, from the skippable frame before it
    while position < size:
        magic = _u32(window.get(position, 4))
        if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC:
            head = window.get(position, 8)
            length = _u32(head, 4)
            hinted = _u32(window.get(position + 8, 4)) if length == 4 else None
            position += 8 + length
            continue
        if magic != FRAME_MAGIC:
            raise NotSplittable(f"no zstd frame at byte {position}")
        content, header, checksum = _frame_header(window, position)
        end = position + hinted if hinted else _blocks_end(window, header, checksum, max_frame)
        frames.append(Frame(position, end, content))
        if end - position > max_frame:
            break  # find_frames says why
        position, hinted = end, None
    return frames


def _frame_header(window: _Window, position: int) -> tuple[int | None, int, bool]:
    """A frame header's declared content size, where its first block starts, and whether the
    frame ends with a checksum (RFC 8878, 3.1.1.1)."""
    descriptor = window.get(position + 4, 1)[0]
    single_segment = bool(descriptor & 0x20)
    window_bytes = 0 if single_segment else 1
    dictionary = (0, 1, 2, 4)[descriptor & 0x03]
    size_field = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
    at = position + 5 + window_bytes + dictionary
    content = None
    if size_field:
        content = int.from_bytes(window.get(at, size_field), "little")
        content += 256 if size_field == 2 else 0
    return content, at + size_field, bool(descriptor & 0x04)


def _blocks_end(window: _Window, position: int, checksum: bool, max_frame: int) -> int:
    """Where the frame whose first block starts at ``position`` ends (blocks followed)."""
    start = position
    while True:
        header = int.from_bytes(window.get(position, 3), "little")
        last, kind, size = header & 1, (header >> 1) & 3, header >> 3
        if kind == 3:
            raise NotSplittable(f"a reserved zstd block type at byte {position}")
        position += 3 + (1 if kind == 1 else size)  # an RLE block holds one byte
        if last:
            return position + (4 if checksum else 0)
        if position - start > max_frame:
            return position  # too large already: no need to find its end


FindCut = Callable[[Frame], int | None]
"""The first record boundary in a frame's decompressed bytes (their offset), or None."""


def plan(
    frames: list[Frame],
    size: int,
    data_start: int,
    header_frame: int,
    part_bytes: int,
    ratio: float,
    find_cut: FindCut,
) -> list[Part]:
    """Parts of about ``part_bytes`` decompressed bytes each (a frame of unknown size counts as
    ``ratio`` times its compressed size), cut at a record boundary in the first frame after
    each part's share; the first part starts after the header (``data_start`` decompressed
    bytes, which end in frame ``header_frame``: no cut before the frame after it)."""
    starts: list[tuple[int, int, int]] = [(0, data_start, 0)]  # (frame start, skip, frame end)
    weight = 0.0
    for index, frame in enumerate(frames):
        if weight >= part_bytes and index > header_frame:
            offset = find_cut(frame)
            if offset is not None:
                starts.append((frame.start, offset, frame.end))
                weight = 0.0
        weight += frame.content if frame.content is not None else frame.size * ratio
    parts = [
        Part(index, start, end, skip=skip, take=take, stop=stop)
        for index, ((start, skip, _), (end, take, stop)) in enumerate(itertools.pairwise(starts))
    ]
    start, skip, _ = starts[-1]
    parts.append(Part(len(parts), start, size, skip=skip))
    return parts
