"""Finding a zstd file's frames (tasks.fanout.frames) in each layout tools write, what it costs
in reads, and when a file can't be cut between frames."""

from __future__ import annotations

import io
import random

import pytest
import zstandard

from tasks.fanout import frames
from tasks.fanout.frames import Frame, NotSplittable
from tests.support import zstd_layouts

DATA = b"".join(b"%d,%d,note %d\n" % (i, i * 7, i % 13) for i in range(40_000))


class Reads:
    """``read(start, end)`` over bytes, counting requests and bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.requests = 0
        self.bytes = 0

    def __call__(self, start: int, end: int) -> bytes:
        self.requests += 1
        chunk = self.data[start:end]
        self.bytes += len(chunk)
        return chunk


def _layout(layout: str, seed: int = 1) -> tuple[list[bytes], bytes]:
    chunks = zstd_layouts.chunks(DATA, random.Random(seed), 20_000, 60_000)
    return chunks, zstd_layouts.WRITERS[layout](chunks)


@pytest.mark.parametrize("layout", zstd_layouts.LAYOUTS)
def test_every_layout_gives_its_frames_in_order(layout: str) -> None:
    chunks, data = _layout(layout)
    found = frames.find_frames(len(data), Reads(data), max_frame=1 << 20)
    assert len(found) == len(chunks)
    # each frame decompresses on its own to its chunk, and declares its size where it can
    for frame, chunk in zip(found, chunks, strict=True):
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data[frame.start : frame.end])
        )
        assert reader.read() == chunk
        assert frame.content in (None, len(chunk))
    assert found[0].start in (0, 12)  # pzstd: after its first skippable frame


def test_the_seek_table_costs_two_reads() -> None:
    _, data = _layout("seekable")
    reads = Reads(data)
    found = frames.find_frames(len(data), reads, max_frame=1 << 20)
    assert reads.requests == 2 and all(f.content for f in found)


def test_pzstd_costs_one_short_read_per_frame() -> None:
    chunks, data = _layout("pzstd")
    reads = Reads(data)
    frames.find_frames(len(data), reads, max_frame=1 << 20)
    # a look at the end for a seek table, then a hop from frame to frame
    assert reads.requests <= len(chunks) + 2


def test_frames_without_hints_are_followed_block_by_block() -> None:
    _, data = _layout("concatenated")
    reads = Reads(data)
    frames.find_frames(len(data), reads, max_frame=1 << 20)
    assert reads.bytes <= 2 * len(data)  # read once, in windows


def test_a_single_frame_is_not_splittable() -> None:
    data = zstd_layouts.single_frame(DATA)
    with pytest.raises(NotSplittable, match="single zstd frame"):
        frames.find_frames(len(data), Reads(data), max_frame=1 << 20)


def test_a_frame_larger_than_a_part_stops_the_search_early() -> None:
    # GIVEN a large single frame of incompressible bytes (what a file cut into no frames is)
    noise = random.Random(2).randbytes(3 << 20)
    data = zstd_layouts.concatenated([noise, b"x"])
    reads = Reads(data)
    # THEN it is not splittable, found out after about max_frame bytes, not the whole file
    with pytest.raises(NotSplittable, match="at most 1048576 bytes"):
        frames.find_frames(len(data), reads, max_frame=1 << 20)
    assert reads.bytes < 2 << 20


@pytest.mark.parametrize("data", [b"not zstd at all, just text\n" * 10, b"\x28\xb5\x2f\xfd"])
def test_bytes_that_are_not_frames_are_not_splittable(data: bytes) -> None:
    with pytest.raises(NotSplittable):
        frames.find_frames(len(data), Reads(data), max_frame=1 << 20)


def test_a_seek_table_that_does_not_describe_the_file_is_not_trusted() -> None:
    _, data = _layout("seekable")
    broken = b"\x00" * 7 + data  # the table's frames no longer end where it starts
    with pytest.raises(NotSplittable):
        frames.find_frames(len(broken), Reads(broken), max_frame=1 << 20)


def test_plan_cuts_in_the_first_frame_past_each_share() -> None:
    found = [Frame(i * 100, i * 100 + 100, 1000) for i in range(10)]
    offsets = {f.start: 7 for f in found}
    parts = frames.plan(found, 1000, 30, 0, 2500, 1.0, lambda f: offsets[f.start])
    # shares of 2,500 decompressed bytes: cuts in frames 3 and 6 and 9, at offset 7 of each
    assert [(p.start, p.skip, p.end, p.take, p.stop) for p in parts] == [
        (0, 30, 300, 7, 400),
        (300, 7, 600, 7, 700),
        (600, 7, 900, 7, 1000),
        (900, 7, 1000, 0, 0),
    ]


def test_plan_never_cuts_before_the_header_ends_nor_where_no_record_ends() -> None:
    found = [Frame(i * 100, i * 100 + 100, None) for i in range(6)]
    cuts = {300: None, 400: 5}
    parts = frames.plan(found, 600, 10, 2, 150, 1.0, lambda f: cuts.get(f.start, 1))
    # frames 0-2 hold the header: the first cut is in frame 3, where no record ends: frame 4
    assert [(p.start, p.skip) for p in parts] == [(0, 10), (400, 5)]
