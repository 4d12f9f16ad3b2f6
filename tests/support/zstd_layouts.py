"""zstd files written as many frames, the ways tools write them (tasks.fanout.frames): frames
cut at arbitrary bytes of the content (records straddle them), then laid out as plain
concatenated frames, as pzstd does (a skippable frame with each frame's size before it), or in
the seekable format (a seek table at the end)."""

from __future__ import annotations

import random
from collections.abc import Callable

import zstandard

LAYOUTS = ("concatenated", "pzstd", "seekable")


def chunks(data: bytes, rng: random.Random, smallest: int, largest: int) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        size = rng.randint(smallest, largest)
        out.append(data[at : at + size])
        at += size
    return out


def _frame(chunk: bytes, *, content_size: bool, checksum: bool) -> bytes:
    compressor = zstandard.ZstdCompressor(
        level=1, write_content_size=content_size, write_checksum=checksum
    )
    if content_size:
        return compressor.compress(chunk)
    writer = compressor.compressobj()  # streaming: the content size is not declared
    return writer.compress(chunk) + writer.flush()


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "little")


def concatenated(parts: list[bytes]) -> bytes:
    return b"".join(_frame(p, content_size=True, checksum=False) for p in parts)


def pzstd(parts: list[bytes]) -> bytes:
    """pzstd's layout: before each frame a skippable frame (magic 0x184D2A50, size 4) holding
    the frame's compressed size; frames without a declared content size, with checksums."""
    out = b""
    for part in parts:
        frame = _frame(part, content_size=False, checksum=True)
        out += _u32(0x184D2A50) + _u32(4) + _u32(len(frame)) + frame
    return out


def seekable(parts: list[bytes]) -> bytes:
    """The seekable format: frames, then a skippable frame (0x184D2A5E) listing each frame's
    compressed and decompressed size, ending with the footer (count, descriptor, magic)."""
    frames = [_frame(p, content_size=False, checksum=False) for p in parts]
    entries = b"".join(_u32(len(f)) + _u32(len(p)) for f, p in zip(frames, parts, strict=True))
    footer = _u32(len(frames)) + b"\x00" + _u32(0x8F92EAB1)
    table = entries + footer
    return b"".join(frames) + _u32(0x184D2A5E) + _u32(len(table)) + table


WRITERS: dict[str, Callable[[list[bytes]], bytes]] = {
    "concatenated": concatenated,
    "pzstd": pzstd,
    "seekable": seekable,
}


def multi_frame(data: bytes, layout: str, rng: random.Random, smallest: int, largest: int) -> bytes:
    return WRITERS[layout](chunks(data, rng, smallest, largest))


def single_frame(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=1).compress(data)
