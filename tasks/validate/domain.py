"""Cheap structural checks on a staged object, reading at most a bounded prefix of it.

What is checked here (permanent problems -> quarantine): a supported suffix, a non-empty object
within the size limit, valid gzip framing for ``.gz``, and a header line within the first
:data:`PREFIX_BYTES` bytes that is UTF-8, not empty, and names every column exactly once.
What the event says is checked against S3 first: a vanished object is SourceMissing, a replaced one
SourceChanged (stale events fail without touching any file).
"""

from __future__ import annotations

import csv
import zlib
from collections import defaultdict
from typing import TYPE_CHECKING, Protocol

from tasks import formats, log
from tasks.errors import InvalidFile, SourceChanged, UnsupportedFormat
from tasks.models import FileSpec, ObjectRef, Plan, Target
from tasks.settings import ValidateSettings

if TYPE_CHECKING:
    from tasks.adapters.s3 import Head

PREFIX_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class Store(Protocol):
    def head(self, ref: ObjectRef) -> Head: ...

    def read_prefix(self, ref: ObjectRef, length: int) -> bytes: ...


def validate(source: ObjectRef, store: Store, settings: ValidateSettings) -> Plan:
    """The plan for converting ``source``, or the error that says what is wrong with it."""
    where = f"s3://{source.bucket}/{source.key}"
    head = store.head(source)  # SourceMissing when gone
    announced = (source.etag or "").strip('"')
    if announced and announced != head.etag:
        raise SourceChanged(f"{where}: eTag is now {head.etag}, the event announced {announced}")
    if not formats.matches_suffix(source.key, settings.suffixes):
        raise UnsupportedFormat(
            f"{where}: suffix not accepted (accepted: {', '.join(settings.suffixes)})"
        )
    input_format, compression = formats.detect(source.key)
    if head.size == 0:
        raise InvalidFile(f"{where}: the file is empty (0 bytes)")
    if head.size > settings.max_file_bytes:
        raise InvalidFile(
            f"{where}: the file has {head.size} bytes, more than the limit of"
            f" {settings.max_file_bytes} bytes"
        )
    current = ObjectRef(
        bucket=source.bucket,
        key=source.key,
        size=head.size,
        etag=head.etag or None,
        version_id=head.version_id or source.version_id,
        sequencer=source.sequencer,
    )
    spec = FileSpec(ref=current, format=input_format, compression=compression)
    prefix = store.read_prefix(current, PREFIX_BYTES)  # If-Match: SourceChanged if replaced now
    complete = len(prefix) >= head.size
    if compression == "gzip":
        text, complete = gunzip_prefix(prefix, complete=complete, where=where)
    else:
        text = prefix[:PREFIX_BYTES]
    check_header(
        text,
        complete=complete,
        delimiter=spec.delimiter,
        where=where,
        decompressed=compression == "gzip",
    )
    log.info("file validated", key=source.key, format=input_format, compression=compression)
    return Plan(
        file=spec,
        target=Target(bucket=settings.output_bucket, key=formats.output_key(source.key)),
    )


def gunzip_prefix(data: bytes, *, complete: bool, where: str) -> tuple[bytes, bool]:
    """Decompress at most :data:`PREFIX_BYTES` from the start of a gzip file.

    ``data`` is a prefix of the file (``complete`` if it is the whole file); a stream cut short by
    the prefix is fine. Returns the decompressed bytes and whether they are the whole content.
    Concatenated gzip members are followed, as gzip readers do.
    """
    if not data.startswith(GZIP_MAGIC):
        raise InvalidFile(
            f"{where}: not gzip (the first bytes are {data[:2].hex()}, gzip starts with 1f8b)"
        )
    out = bytearray()
    remaining = data
    while True:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(remaining, PREFIX_BYTES - len(out))
        except zlib.error as exc:
            raise InvalidFile(f"{where}: corrupt gzip data ({exc})") from exc
        if not inflater.eof:  # cut by the prefix, or the output limit reached
            if complete and not inflater.unconsumed_tail and len(out) < PREFIX_BYTES:
                raise InvalidFile(f"{where}: the gzip stream is truncated")
            return bytes(out), False
        remaining = inflater.unused_data
        if not remaining.startswith(GZIP_MAGIC) or len(out) >= PREFIX_BYTES:
            # Trailing bytes that aren't another member (padding) end the content, as in gzip.
            return bytes(out), complete and len(out) < PREFIX_BYTES


def check_header(
    text: bytes, *, complete: bool, delimiter: str, where: str, decompressed: bool = False
) -> list[str]:
    """The column names of the header line at the start of ``text``, or InvalidFile.

    ``complete`` says ``text`` is the whole content, so a header without a line break is allowed.
    """
    end = text.find(b"\n")
    if end == -1 and not complete:
        of = " of decompressed content" if decompressed else ""
        raise InvalidFile(f"{where}: no header line in the first {PREFIX_BYTES} bytes{of}")
    raw = (text if end == -1 else text[:end]).removesuffix(b"\r").removeprefix(_UTF8_BOM)
    if raw.startswith(_UTF16_BOMS):
        raise InvalidFile(f"{where}: the header is UTF-16 encoded (byte order mark); use UTF-8")
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidFile(
            f"{where}: the header line is not valid UTF-8"
            f" (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from exc
    if not line.strip():
        raise InvalidFile(f"{where}: the header line (first line) is empty")
    try:
        columns = next(csv.reader([line], delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise InvalidFile(f"{where}: the header line can't be parsed: {exc}") from exc
    _check_columns(columns, where)
    return columns


def _check_columns(columns: list[str], where: str) -> None:
    empty = [str(i) for i, name in enumerate(columns, start=1) if not name.strip()]
    if empty:
        raise InvalidFile(
            f"{where}: the header has an empty column name at position {', '.join(empty)}"
            f" (of {len(columns)} columns)"
        )
    positions: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(columns, start=1):
        positions[name].append(i)
    duplicates = [
        f"{name!r} (columns {', '.join(map(str, at))})"
        for name, at in positions.items()
        if len(at) > 1
    ]
    if duplicates:
        raise InvalidFile(
            f"{where}: the header has duplicate column names: {'; '.join(duplicates)}"
        )
