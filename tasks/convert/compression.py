"""Compressed inputs decompressed as a stream (the compression declared by the extension, or
recognised by the magic bytes of :mod:`tasks.formats`)."""

from __future__ import annotations

import bz2
import io
from typing import BinaryIO, cast

import zstandard
from isal import igzip

from tasks.errors import DecompressionLimitExceeded
from tasks.formats import MAGIC_BYTES, Compression, from_magic
from tasks.settings import DecompressionLimits


def read_into(stream: BinaryIO, view: memoryview) -> int:
    """Read up to ``len(view)`` bytes of ``stream`` straight into ``view`` (no bytes object in
    between when the stream can: every layer of a decompressed stream used to copy each byte
    once more); the count read, 0 at the end."""
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return int(readinto(view) or 0)
    data = stream.read(len(view))
    view[: len(data)] = data
    return len(data)


class TruncatedZstd(EOFError):
    """The zstd input ended inside a frame (python-zstandard's reader ends silently there)."""


class _Peekable(io.RawIOBase):
    """Gives back the bytes read to sniff the magic number, then reads on."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest
        self.delivered = 0
        """Bytes given out so far (the compressed bytes fed to a decompressor)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            self.delivered += n
            return n
        n = read_into(self._rest, view)
        self.delivered += n
        return n


def check_expansion(
    content: int, compressed: int, limits: DecompressionLimits, kind: Compression
) -> None:
    """DecompressionLimitExceeded if ``content`` bytes decompressed from ``compressed`` bytes of
    ``kind`` are more than ``limits`` allow."""
    if content > limits.max_bytes:
        raise DecompressionLimitExceeded(
            f"the {kind} content is larger than the limit of {limits.max_bytes} bytes"
            f" (more than {content} bytes from the first {compressed} compressed bytes;"
            " setting CHUTE_MAX_DECOMPRESSED_BYTES)"
        )
    if content > limits.grace_bytes and content > limits.max_ratio * max(compressed, 1):
        raise DecompressionLimitExceeded(
            f"the {kind} content expands more than {limits.max_ratio} times: {content} bytes"
            f" from the first {compressed} compressed bytes (a decompression bomb?; setting"
            " CHUTE_MAX_DECOMPRESSION_RATIO)"
        )


class _Limited(io.RawIOBase):
    """The decompressed stream, stopped with DecompressionLimitExceeded as soon as the content
    read so far breaks the limits (compared with the compressed bytes fed so far, which
    read-ahead only overstates: the ratio is never overstated)."""

    def __init__(
        self, inner: BinaryIO, fed: _Peekable, limits: DecompressionLimits, kind: Compression
    ) -> None:
        self._inner = inner
        self._fed = fed
        self._limits = limits
        self._kind = kind
        self.content = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = read_into(self._inner, memoryview(buffer).cast("B"))
        self.content += n
        check_expansion(self.content, self._fed.delivered, self._limits, self._kind)
        return n

    def close(self) -> None:
        self._inner.close()
        super().close()


class _ZstdFrames(io.RawIOBase):
    """Passes compressed bytes through unchanged while following the zstd frame layout (frame
    and block headers only, no decompression), so that an input ending inside a frame is
    reported (TruncatedZstd) instead of silently giving a prefix of the data."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._header = b""  # bytes of the header being read
        self._need = 4  # header bytes wanted: 4 = a frame's magic number
        self._state = "magic"
        self._skip = 0  # bytes to pass over (frame header fields, block contents, checksum)
        self._checksum = False
        self._lost = False  # not a layout we know: the decompressor reports it

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        n = read_into(self._raw, view)
        if not n:
            if not self._lost and (self._skip or self._header or self._state != "magic"):
                raise TruncatedZstd("zstd data ends inside a frame (truncated file?)")
            return 0
        if not self._lost:
            self._follow(view[:n])
        return n

    def _follow(self, data: memoryview) -> None:
        position = 0
        while position < len(data) and not self._lost:
            if self._skip:
                step = min(self._skip, len(data) - position)
                self._skip -= step
                position += step
                continue
            take = min(self._need - len(self._header), len(data) - position)
            self._header += data[position : position + take]
            position += take
            if len(self._header) == self._need:
                header, self._header = self._header, b""
                self._next(header)

    def _next(self, header: bytes) -> None:
        value = int.from_bytes(header, "little")
        if self._state == "magic":
            if header == b"\x28\xb5\x2f\xfd":
                self._state, self._need = "descriptor", 1
            elif value & 0xFFFFFFF0 == 0x184D2A50:  # a skippable frame: its size follows
                self._state, self._need = "skippable", 4
            else:
                self._lost = True
        elif self._state == "descriptor":
            single_segment = bool(value & 0x20)
            self._checksum = bool(value & 0x04)
            window = 0 if single_segment else 1
            dictionary = (0, 1, 2, 4)[value & 0x03]
            content_size = (1 if single_segment else 0, 2, 4, 8)[value >> 6]
            self._skip = window + dictionary + content_size
            self._state, self._need = "block", 3
        elif self._state == "block":
            last, kind, size = value & 1, (value >> 1) & 3, value >> 3
            if kind == 3:  # reserved
                self._lost = True
                return
            self._skip = 1 if kind == 1 else size  # an RLE block holds one byte
            if last:
                self._skip += 4 if self._checksum else 0
                self._state, self._need = "magic", 4
        else:  # skippable frame size
            self._skip = value
            self._state, self._need = "magic", 4


def open_decompressed(
    raw: BinaryIO,
    declared: Compression | None = None,
    limits: DecompressionLimits | None = None,
) -> tuple[BinaryIO, Compression]:
    """A binary stream of the decompressed bytes, and the compression found. ``declared``
    (from the extension) wins; otherwise the magic bytes decide. With ``limits``, reading
    compressed content past them raises DecompressionLimitExceeded."""
    # With limits, little read-ahead: the compressed bytes fed so far (the ratio's divisor)
    # then overstate those the decompressor used by little, and a bomb is stopped early.
    stream, kind, fed = _open(raw, declared, 1 << 20 if limits is None else _LIMITED_READ_AHEAD)
    if limits is None or kind == "none":
        return stream, kind
    limited = _Limited(stream, fed, limits, kind)
    return cast(BinaryIO, io.BufferedReader(limited, buffer_size=1 << 20)), kind


_LIMITED_READ_AHEAD = 64 * 1024


def _open(
    raw: BinaryIO, declared: Compression | None, read_ahead: int
) -> tuple[BinaryIO, Compression, _Peekable]:
    head = b""
    while len(head) < MAGIC_BYTES:  # a raw stream may return fewer bytes than asked
        more = raw.read(MAGIC_BYTES - len(head))
        if not more:
            break
        head += more
    kind = declared or from_magic(head)
    fed = _Peekable(head, raw)
    stream = io.BufferedReader(fed, buffer_size=read_ahead)
    if kind == "gzip":
        gzip_file = igzip.IGzipFile(fileobj=stream, mode="rb")  # type: ignore[no-untyped-call]
        return cast(BinaryIO, gzip_file), kind, fed
    if kind == "zstd":
        frames = cast(BinaryIO, _ZstdFrames(cast(BinaryIO, stream)))
        reader = zstandard.ZstdDecompressor().stream_reader(frames, read_across_frames=True)
        return cast(BinaryIO, io.BufferedReader(reader, buffer_size=1 << 20)), kind, fed
    if kind == "bz2":
        return cast(BinaryIO, bz2.BZ2File(stream, mode="rb")), kind, fed
    return cast(BinaryIO, stream), kind, fed
