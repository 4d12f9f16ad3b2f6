"""S3 object bodies stay on disk: moto holds whole bodies in memory (a FakeKey copies every body
through memory, CompleteMultipartUpload joins all parts in memory, ~3x the object, GetObject and
CopyObject read the whole body, UploadPartCopy the whole source for every part); with these
fixes a key can adopt a body already in a file, and bodies are read, joined and copied in chunks
of at most CHUNK_BYTES, keeping the server's memory bounded (bench/embedded_memory.py).
"""

from __future__ import annotations

import binascii
import hashlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from moto.core.compat import HAS_CRT
from moto.s3 import models as s3_models
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
from moto.s3.models import FakeKey, FakeMultipart, S3Backend
from moto.s3.responses import S3Response

from chute.local.moto_patches.seam import Fixes, Kind

FIXES = Fixes()

SMALL_BODY_BYTES = 8 * 1024 * 1024
"""Bodies up to this size are passed as bytes (moto's own buffer keeps them in memory)."""
CHUNK_BYTES = 8 * 1024 * 1024


class FileBody:
    """An object body already in a file: a FakeKey adopts the file as its buffer (with the
    ``s3-key-file-body`` fix) instead of copying the bytes through memory."""

    def __init__(self, file: IO[bytes], size: int) -> None:
        self.file = file
        self.size = size

    def __len__(self) -> int:
        return self.size


def key_chunks(key: FakeKey, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
    """The bytes ``[start, stop)`` of a key's body, in chunks of at most CHUNK_BYTES, without
    reading the whole body (and independent of the buffer's position, which others share)."""
    end = key.size if stop is None else min(stop, key.size)
    if start >= end:
        return
    buffer = key._value_buffer
    with key.lock:
        if getattr(buffer, "_rolled", True) is False:  # a SpooledTemporaryFile still in memory
            buffer.seek(start)
            data = buffer.read(end - start)
            fd = -1
        else:
            buffer.flush()
            fd = os.dup(buffer.fileno())
    if fd < 0:
        for offset in range(0, len(data), CHUNK_BYTES):
            yield data[offset : offset + CHUNK_BYTES]
        return
    try:
        position = start
        while position < end:
            chunk = os.pread(fd, min(CHUNK_BYTES, end - position), position)
            if not chunk:
                raise OSError(f"object body ended at byte {position} of {end}")
            position += len(chunk)
            yield chunk
    finally:
        os.close(fd)


def spool(chunks: Iterator[bytes], size: int) -> bytes | FileBody:
    """``size`` bytes from ``chunks``: as bytes when small, else in a temporary file."""
    if size <= SMALL_BODY_BYTES:
        return b"".join(chunks)
    file = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the FakeKey that adopts it
    for chunk in chunks:
        file.write(chunk)
    file.flush()
    return FileBody(file, size)


@FIXES.declare(
    "s3-key-file-body",
    Kind.MEMORY,
    FakeKey,
    "value",
    why="FakeKey copies every body through memory; let it adopt a body already in a file",
)
def _key_file_body(original: property) -> property:
    def set_value(self: FakeKey, new_value: Any) -> None:
        if isinstance(new_value, FileBody):
            previous = self._value_buffer
            self._value_buffer = new_value.file  # type: ignore[assignment]
            self.contentsize = new_value.size
            previous.close()
            return
        assert original.fset is not None
        original.fset(self, new_value)

    return property(original.fget, set_value)


class _StreamingChecksum:
    """moto's multipart checksum (same algorithms, defaults and fallbacks), computed while
    streaming instead of over bytes held in memory."""

    def __init__(self, algorithm: str | None, checksum_type: str | None) -> None:
        self.algorithm = algorithm or "CRC64NVME"
        self.type = checksum_type or (
            "FULL_OBJECT" if self.algorithm == "CRC64NVME" else "COMPOSITE"
        )
        self.parts = 0
        self._composite = bytearray()
        self._whole = self._new()
        self._part = self._new()

    def _new(self) -> list[Any]:
        name = self.algorithm
        if name == "SHA1":
            return ["hash", hashlib.sha1(usedforsecurity=False)]
        if name in ("CRC32", "CRC32C", "CRC64NVME"):
            return [name, 0]
        return ["hash", hashlib.sha256(usedforsecurity=False)]

    @staticmethod
    def _update(state: list[Any], data: bytes) -> None:
        kind = state[0]
        if kind == "hash":
            state[1].update(data)
        elif kind == "CRC64NVME" and HAS_CRT:
            from awscrt import checksums  # type: ignore[import-not-found,unused-ignore]

            state[1] = checksums.crc64nvme(data, state[1])
        elif kind == "CRC32C":
            try:
                import crc32c  # type: ignore[import-not-found]

                state[1] = crc32c.crc32c(data, state[1])
            except ImportError:
                state[1] = binascii.crc32(data, state[1])
        else:  # CRC32, and moto's CRC32 fallbacks
            state[1] = binascii.crc32(data, state[1])

    @staticmethod
    def _digest(state: list[Any]) -> bytes:
        kind = state[0]
        if kind == "hash":
            return bytes(state[1].digest())
        if kind == "CRC64NVME" and HAS_CRT:
            return int(state[1]).to_bytes(8, "big")
        return int(state[1]).to_bytes(4, "big")

    def update(self, data: bytes) -> None:
        if self.type == "COMPOSITE":
            self._update(self._part, data)
        else:
            self._update(self._whole, data)

    def end_part(self) -> None:
        if self.type == "COMPOSITE":
            self._composite.extend(self._digest(self._part))
            self._part = self._new()
        self.parts += 1

    def build(self) -> tuple[str, str, int]:
        import base64

        if self.type == "COMPOSITE":
            whole = self._new()
            self._update(whole, bytes(self._composite))
            return (self.type, base64.b64encode(self._digest(whole)).decode(), self.parts)
        return (self.type, base64.b64encode(self._digest(self._whole)).decode(), 1)


@FIXES.declare(
    "s3-multipart-complete",
    Kind.MEMORY,
    FakeMultipart,
    "complete",
    why="CompleteMultipartUpload joins every part in memory (and again for its checksum)",
)
def _multipart_complete_streaming(original: Any) -> Any:
    def complete(
        self: FakeMultipart, body: Iterator[tuple[int, str]]
    ) -> tuple[bytes | FileBody, str, tuple[str, str, int] | None]:
        checksum = _StreamingChecksum(
            self.metadata.get("x-amz-checksum-algorithm"),
            self.metadata.get("x-amz-checksum-type"),
        )
        parts: list[FakeKey] = []
        md5s = bytearray()
        for number, etag in body:
            part = self.parts.get(number)
            if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
                raise InvalidPart()
            if parts and parts[-1].contentsize < s3_models.S3_UPLOAD_PART_MIN_SIZE:  # type: ignore[attr-defined]
                raise EntityTooSmall()
            md5s.extend(binascii.unhexlify(part.etag.replace('"', "")))
            parts.append(part)
        if not parts:
            raise MalformedXML

        def chunks() -> Iterator[bytes]:
            for part in parts:
                for chunk in key_chunks(part):
                    checksum.update(chunk)
                    yield chunk
                checksum.end_part()

        value = spool(chunks(), sum(p.contentsize for p in parts))
        full_etag = hashlib.md5(bytes(md5s), usedforsecurity=False).hexdigest()
        return value, f"{full_etag}-{len(parts)}", checksum.build()

    return complete


class _BodyStream:
    """A GetObject body sent in chunks from the key's buffer; supports what moto's response
    code does with a body (len, truth, slicing for Range requests)."""

    def __init__(self, key: FakeKey, start: int = 0, stop: int | None = None) -> None:
        self._key = key
        self._start = start
        self._stop = key.size if stop is None else stop

    def __len__(self) -> int:
        return max(0, self._stop - self._start)

    def __getitem__(self, index: slice) -> _BodyStream:
        start, stop, _ = index.indices(len(self))
        return _BodyStream(self._key, self._start + start, self._start + max(start, stop))

    def __iter__(self) -> Iterator[bytes]:
        return key_chunks(self._key, self._start, self._stop)


class _StreamingKey:
    """The key GetObject sees: the real one, except that its value streams."""

    def __init__(self, key: FakeKey) -> None:
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._key, name)

    @property
    def value(self) -> _BodyStream:
        return _BodyStream(self._key)


@FIXES.declare(
    "s3-get-object-streaming",
    Kind.MEMORY,
    S3Response,
    "get_object",
    why="GetObject reads the whole body into memory before sending it",
)
def _get_object_streaming(original: Any) -> Any:
    def get_object(self: S3Response) -> Any:
        find_key = self._get_key

        def streaming_key(*args: Any, **kwargs: Any) -> tuple[Any, bool]:
            key, not_modified = find_key(*args, **kwargs)
            return _StreamingKey(key), not_modified

        self._get_key = streaming_key  # type: ignore[method-assign]
        try:
            return original(self)
        finally:
            del self._get_key

    return get_object


@FIXES.declare(
    "s3-upload-part-copy-range",
    Kind.MEMORY,
    S3Backend,
    "upload_part_copy",
    why="UploadPartCopy reads the whole source object for every part",
)
def _upload_part_copy_range(original: Any) -> Any:
    def upload_part_copy(
        self: S3Backend,
        dest_bucket_name: str,
        multipart_id: str,
        part_id: int,
        src_bucket_name: str,
        src_key_name: str,
        src_version_id: str | None,
        start_byte: int,
        end_byte: int,
    ) -> FakeKey:
        multipart = self.get_bucket(dest_bucket_name).multiparts[multipart_id]
        source: FakeKey = self.get_object(  # type: ignore[assignment]
            src_bucket_name, src_key_name, version_id=src_version_id
        )
        start, stop = 0, source.size
        if start_byte is not None:
            start, stop = start_byte, min(end_byte + 1, source.size)
        size = max(0, stop - start)
        return multipart.set_part(part_id, spool(key_chunks(source, start, stop), size))  # type: ignore[arg-type]

    return upload_part_copy


class _CopySource:
    """The source key CopyObject sees: the real one, except that its value is spooled."""

    def __init__(self, key: FakeKey) -> None:
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._key, name)

    @property
    def value(self) -> bytes | FileBody:
        return spool(key_chunks(self._key), self._key.size)


@FIXES.declare(
    "s3-copy-object-streaming",
    Kind.MEMORY,
    S3Backend,
    "copy_object",
    why="CopyObject reads the whole source object into memory",
)
def _copy_object_streaming(original: Any) -> Any:
    def copy_object(self: S3Backend, src_key: FakeKey, *args: Any, **kwargs: Any) -> Any:
        return original(self, _CopySource(src_key), *args, **kwargs)

    return copy_object
