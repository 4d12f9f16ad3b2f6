"""Reading a zstd source cut between its frames (tasks.fanout.frames): its first bytes for the
header, a frame's first bytes for the planner's cut, and a part's bytes for its conversion,
decompressed. The bytes come from the caller's ``read(start, end)`` / ``open_range(start,
end)``: no storage here."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import zstandard

from tasks.convert.compression import open_decompressed
from tasks.fanout.cuts import Part, Read
from tasks.fanout.frames import Frame
from tasks.settings import DecompressionLimits

CHUNK = 64 * 1024
"""Compressed bytes read at a time by the planner."""


class _Compressed(io.RawIOBase):
    """Compressed bytes ``[start, end)``, read in chunks through ``read``; ``fed``: how many
    were handed out so far."""

    def __init__(self, read: Read, start: int, end: int) -> None:
        self._read = read
        self._position = start
        self._end = end
        self.fed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), CHUNK, self._end - self._position)
        if want <= 0:
            return 0
        data = self._read(self._position, self._position + want)
        view[: len(data)] = data
        self._position += len(data)
        self.fed += len(data)
        return len(data)


@dataclass(frozen=True)
class Head:
    """The source's first decompressed bytes, and how much they shrank compressed."""

    data: bytes
    ratio: float
    """Decompressed bytes per compressed byte read for them (at least 1; read-ahead makes it
    low, never high)."""


def head(read: Read, size: int, length: int) -> Head:
    """The first ``length`` decompressed bytes of a zstd source of ``size`` bytes (fewer if it
    holds fewer), across frames."""
    raw = _Compressed(read, 0, size)
    reader = zstandard.ZstdDecompressor().stream_reader(
        cast(BinaryIO, raw), read_size=CHUNK, read_across_frames=True
    )
    data = bytearray()
    while len(data) < length:
        block = reader.read(min(CHUNK, length - len(data)))
        if not block:
            break
        data += block
    return Head(bytes(data), max(1.0, len(data) / max(raw.fed, 1)))


def frame_of(read: Read, frames: list[Frame], offset: int) -> int:
    """The index of the frame that holds decompressed byte ``offset - 1`` of the source (the
    last byte of its first ``offset``): a cut after that frame leaves them all before it."""
    for index, frame in enumerate(frames):
        if offset <= 0:
            return max(index - 1, 0)
        offset -= len(FrameWindow(read, frame)(0, offset))
    return len(frames) - 1


class FrameWindow:
    """``read(start, end)`` over one frame's decompressed bytes (fewer at its end), decompressing
    only as far as asked."""

    def __init__(self, read: Read, frame: Frame) -> None:
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            cast(BinaryIO, _Compressed(read, frame.start, frame.end)), read_size=CHUNK
        )
        self._data = bytearray()
        self._done = False

    def __call__(self, start: int, end: int) -> bytes:
        while len(self._data) < end and not self._done:
            block = self._reader.read(end - len(self._data))
            self._done = not block
            self._data += block
        return bytes(self._data[start:end])


class _Spliced(io.RawIOBase):
    """``first`` less its first ``skip`` bytes, then the first ``take`` bytes of ``second``."""

    def __init__(
        self, first: BinaryIO, skip: int, second: Callable[[], BinaryIO] | None, take: int
    ) -> None:
        self._first: BinaryIO | None = first
        self._skip = skip
        self._open_second = second
        self._second: BinaryIO | None = None
        self._take = take

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while self._first is not None:
            while self._skip:
                skipped = self._first.read(min(self._skip, 1 << 20))
                if not skipped:
                    raise EOFError("a part's frames end before its first record")
                self._skip -= len(skipped)
            data = self._first.read(len(view))
            if data:
                view[: len(data)] = data
                return len(data)
            self._first.close()
            self._first = None
        if not self._take or self._open_second is None:
            return 0
        if self._second is None:
            self._second = self._open_second()
        data = self._second.read(min(len(view), self._take))
        if not data:
            raise EOFError("a part's last frame ends before its cut")
        self._take -= len(data)
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        for stream in (self._first, self._second):
            if stream is not None:
                stream.close()
        super().close()


OpenRange = Callable[[int, int], BinaryIO]
"""``open_range(start, end)``: a stream of the source's bytes ``[start, end)``."""


def part_stream(open_range: OpenRange, part: Part, limits: DecompressionLimits) -> BinaryIO:
    """The part's decompressed bytes (see tasks.fanout.cuts.Part), within the decompression
    limits (each frame run checked on its own)."""

    def decompressed(start: int, end: int) -> BinaryIO:
        return open_decompressed(open_range(start, end), "zstd", limits)[0]

    second = (lambda: decompressed(part.end, part.stop)) if part.take else None
    spliced = _Spliced(decompressed(part.start, part.end), part.skip, second, part.take)
    return cast(BinaryIO, io.BufferedReader(spliced, buffer_size=1 << 20))
