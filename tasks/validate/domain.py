"""Cheap structural checks on a staged object, reading at most a bounded prefix of it.

What is checked here (permanent problems -> quarantine): a supported suffix, a non-empty object
within the size limit, compressed content that is what the extension says (gzip, zstd or bzip2:
magic bytes, then a bounded decompression of the prefix), and a header line (the first record)
ending within the first :data:`PREFIX_BYTES` bytes of content that is UTF-8, not empty, and names
every column exactly once. With data contracts, the key must match one unless unmatched files are
converted as text, and the header must satisfy the contract matched (ContractViolation).
What the event says is checked against S3 first: a deleted object is SourceMissing, one replaced by
a newer upload Superseded, a changed one SourceChanged (stale events fail without touching any
file).

The plan carries everything the conversion needs, decided once here so that Lambda and Batch read
the file the same way: the compression, the delimiter (the contract's, else the extension's, else
sniffed from the header line), the output formats and the contract's name.
"""

from __future__ import annotations

import bz2
import csv
import json
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final, Protocol

import zstandard

from tasks import fence, log
from tasks.convert import dialect
from tasks.convert.compression import check_expansion
from tasks.errors import (
    ContractViolation,
    DecompressionLimitExceeded,
    InvalidFile,
    SourceChanged,
    UnsupportedFormat,
)
from tasks.formats import (
    COMPRESSION_EXTENSIONS,
    MAGIC,
    MAGIC_BYTES,
    Compression,
    from_magic,
    keys,
    starts_with_magic,
)
from tasks.models import FileSpec, ObjectRef, Plan, Target
from tasks.settings import DecompressionLimits, ValidateSettings

if TYPE_CHECKING:
    from tasks.data_contracts.model import Contract, ContractSet
    from tasks.models import Head

PREFIX_BYTES: Final = 64 * 1024
"""Content bytes checked (decompressed): the header line must end within them."""
READ_BYTES: Final[Mapping[Compression, int]] = {
    "none": PREFIX_BYTES,
    "gzip": PREFIX_BYTES,  # deflate yields its output as it goes
    "zstd": 256 * 1024,  # a zstd block (up to 128 KiB, compressed or not) decodes only whole
    "bz2": 1024 * 1024,  # a bzip2 block (up to 900 kB of content) decodes only whole
}
"""Bytes of the object read for each compression: enough for :data:`PREFIX_BYTES` of content."""
_ZSTD_STEP = 16
"""Compressed bytes fed to zstd at a time: the decompressor has no output limit, and a few
bytes can hold a whole 128 KiB block, so feeding little bounds the memory a bomb can take."""
_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS: Final = (
    (b"\xff\xfe\x00\x00", "UTF-32LE"),
    (b"\x00\x00\xfe\xff", "UTF-32BE"),
    (b"\xff\xfe", "UTF-16LE"),
    (b"\xfe\xff", "UTF-16BE"),
)
# Which byte positions (mod 4) are mostly NUL in text of each wide encoding without a byte order
# mark (the characters of a header are mostly ASCII).
_WIDE_NULS: Final = (
    ("UTF-32LE", (False, True, True, True)),
    ("UTF-32BE", (True, True, True, False)),
    ("UTF-16LE", (False, True, False, True)),
    ("UTF-16BE", (True, False, True, False)),
)
_QUOTE = '"'


class Store(Protocol):
    def head(self, ref: ObjectRef) -> Head: ...

    def read_current(self, bucket: str, key: str, length: int) -> tuple[Head, bytes] | None: ...

    def read_prefix(self, ref: ObjectRef, length: int) -> bytes: ...


def _read_bytes(key: str) -> int:
    """How much of the object the key's compression needs read (an unsupported key's error is
    raised after staging's check, as for any other file)."""
    try:
        return READ_BYTES[keys.detect(key)[0]]
    except UnsupportedFormat:
        return PREFIX_BYTES


def validate(
    source: ObjectRef,
    store: Store,
    settings: ValidateSettings,
    contracts: ContractSet | None = None,
) -> Plan:
    """The plan for converting ``source``, or the error that says what is wrong with it."""
    where = f"s3://{source.bucket}/{source.key}"
    # Staging's current object and its first bytes, in one request. Deleted or replaced since
    # the event: that's the outcome, whatever was read.
    current_read = store.read_current(source.bucket, source.key, _read_bytes(source.key))
    staged = current_read[0] if current_read is not None else None
    fence.current_version(source, staged, where)
    # staging's current object is the announced version (checked just now): what was read is
    # that version's; else the version itself is looked at (SourceMissing when gone) and read
    prefix: bytes | None = None
    if current_read is not None and current_read[0].version_id == source.version_id:
        head, prefix = current_read
    else:
        head = store.head(source)
    announced = (source.etag or "").strip('"')
    if announced and announced != head.etag:
        raise SourceChanged(f"{where}: eTag is now {head.etag}, the event announced {announced}")
    if not keys.matches_suffix(source.key, settings.suffixes):
        raise UnsupportedFormat(
            f"{where}: suffix not accepted (accepted: {', '.join(settings.suffixes)})"
        )
    compression, delimiter = keys.detect(source.key)
    contract = match_contract(source.key, contracts, where)
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
        uploaded=source.uploaded or head.last_modified,
    )
    if prefix is None:  # If-Match: SourceChanged if the object is replaced since the HEAD
        prefix = store.read_prefix(current, READ_BYTES[compression])
    text, complete = decompress_prefix(
        prefix,
        compression,
        complete=len(prefix) >= head.size,
        where=where,
        limits=settings.decompression,
    )
    check_encoding(text, where)
    quote = contract.dialect.quote if contract else _QUOTE
    raw = header_line(
        text, complete=complete, quote=quote, where=where, decompressed=compression != "none"
    )
    if contract and contract.dialect.delimiter:
        delimiter = contract.dialect.delimiter
    if delimiter is None:
        delimiter = dialect.sniff(raw, quote.encode())
    columns = parse_header(raw, delimiter=delimiter, quote=quote, where=where)
    if contract:
        contract.plan_header(columns)  # ContractViolation: rejected before any conversion
    spec = FileSpec(ref=current, compression=compression, delimiter=delimiter)
    target = Target(
        bucket=settings.output_bucket,
        key=keys.output_base(source.key),
        formats=contract.outputs if contract else settings.output_formats,
        contract=contract.name if contract else None,
        infer=contract is None and (contracts is None or contracts.unmatched == "infer"),
    )
    log.info(
        "file validated",
        key=source.key,
        compression=compression,
        delimiter=delimiter,
        columns=len(columns),
        contract=target.contract,
        formats=list(target.formats),
    )
    return Plan(file=spec, target=target, resources=settings.batch_sizing.resources(head.size))


def match_contract(key: str, contracts: ContractSet | None, where: str) -> Contract | None:
    """The contract for ``key``; None for text mode; ContractViolation when unmatched files are
    rejected. The message is JSON, like every ContractViolation's."""
    if contracts is None:
        return None
    contract = contracts.match(key)
    if contract is None and contracts.unmatched == "reject":
        detail = (
            f"{where}: the key matches no data contract in {contracts.source}, and files"
            ' that match none are rejected (unmatched = "reject")'
        )
        document = {"contract": None, "problemCount": 0, "badRows": 0, "detail": detail}
        raise ContractViolation(
            json.dumps({**document, "problems": []}, ensure_ascii=False, separators=(",", ":"))
        )
    return contract


# --- decompression of the prefix ----------------------------------------------------------------
def decompress_prefix(
    data: bytes,
    compression: Compression,
    *,
    complete: bool,
    where: str,
    limits: DecompressionLimits | None = None,
) -> tuple[bytes, bool]:
    """At most :data:`PREFIX_BYTES` of content from the start of the file.

    ``data`` is a prefix of the file (``complete`` if it is the whole file); a compressed stream
    cut short by the prefix is fine, one that ends early when ``complete`` is truncated.
    Returns the content and whether it is the whole content. Concatenated members (gzip, bzip2)
    and frames (zstd) are followed, as their command-line tools do.
    """
    if compression == "none":
        _check_not_compressed(data, where)
        return data[:PREFIX_BYTES], complete and len(data) <= PREFIX_BYTES
    magic = MAGIC[compression].prefix
    if not starts_with_magic(data, compression):
        raise InvalidFile(
            f"{where}: not {compression} (the first bytes are {data[: len(magic)].hex()},"
            f" {compression} starts with {magic.hex()})"
        )
    if compression == "zstd" and limits is not None:
        _check_declared_size(data, limits, where)
    decompress_member = _MEMBER[compression]
    out = bytearray()
    remaining = data
    while True:
        try:
            content, ended, rest = decompress_member(remaining, PREFIX_BYTES - len(out))
        except (zlib.error, zstandard.ZstdError, OSError, EOFError) as exc:
            raise InvalidFile(f"{where}: corrupt {compression} data ({exc})") from exc
        out += content
        if not ended:  # cut by the prefix, or the output limit reached
            if complete and len(out) < PREFIX_BYTES:
                raise InvalidFile(f"{where}: the {compression} stream is truncated")
            return bytes(out), False
        if len(out) >= PREFIX_BYTES or not starts_with_magic(rest, compression):
            # Trailing bytes that aren't another member (padding) end the content, as in gzip.
            return bytes(out), complete and len(out) < PREFIX_BYTES
        remaining = rest


def _check_declared_size(data: bytes, limits: DecompressionLimits, where: str) -> None:
    """A zstd frame that declares its content size: over the limits before reading it."""
    if not data.startswith(MAGIC["zstd"].prefix):
        return
    try:
        declared = zstandard.frame_content_size(data)
    except zstandard.ZstdError:
        return  # a broken header: the decompression says so
    if declared <= 0:  # -1: not declared
        return
    try:
        # The ratio against the whole object's compressed size is unknown here: against the
        # frame's declared size, with the bytes read as the (over)estimate of its compressed size.
        check_expansion(declared, len(data), limits, "zstd")
    except DecompressionLimitExceeded as exc:
        raise DecompressionLimitExceeded(f"{where}: {exc} (declared in the frame header)") from None


# One member/frame: (content up to ``limit`` bytes, whether the member ended, the bytes after it).
_Member = Callable[[bytes, int], tuple[bytes, bool, bytes]]


def _gzip_member(data: bytes, limit: int) -> tuple[bytes, bool, bytes]:
    inflater = zlib.decompressobj(wbits=31)
    content = inflater.decompress(data, limit)
    return content, inflater.eof, inflater.unused_data


def _bz2_member(data: bytes, limit: int) -> tuple[bytes, bool, bytes]:
    decompressor = bz2.BZ2Decompressor()
    content = decompressor.decompress(data, limit)
    return content, decompressor.eof, decompressor.unused_data


def _zstd_frame(data: bytes, limit: int) -> tuple[bytes, bool, bytes]:
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    out = bytearray()
    fed = 0
    while fed < len(data) and len(out) < limit and not decompressor.eof:
        out += decompressor.decompress(data[fed : fed + _ZSTD_STEP])
        fed += _ZSTD_STEP
    rest = decompressor.unused_data + data[fed:] if decompressor.eof else b""
    return bytes(out[:limit]), decompressor.eof, rest


_MEMBER: Final[Mapping[Compression, _Member]] = {
    "gzip": _gzip_member,
    "zstd": _zstd_frame,
    "bz2": _bz2_member,
}


def _check_not_compressed(data: bytes, where: str) -> None:
    """A compressed file under a plain key gets a clear message, not "not valid UTF-8"."""
    kind = from_magic(data[:MAGIC_BYTES])
    if kind != "none":
        extension = next(e for e, k in COMPRESSION_EXTENSIONS.items() if k == kind)
        raise InvalidFile(
            f"{where}: the content is {kind}-compressed but the key does not end with {extension}"
        )


# --- the header line ----------------------------------------------------------------------------
def header_line(
    text: bytes, *, complete: bool, quote: str = _QUOTE, where: str, decompressed: bool = False
) -> bytes:
    """The header line (the first record: a line break inside quotes doesn't end it) at the start
    of ``text``, without its line ending or UTF-8 byte order mark; InvalidFile if it doesn't end
    within ``text``. ``complete`` says ``text`` is the whole content, so a header without a line
    break is allowed."""
    end = _first_record_end(text, quote.encode())
    of = " of decompressed content" if decompressed else ""
    if end == -1 and b"\n" in text:  # line breaks, all inside quotes
        within = "" if complete else f" in the first {len(text)} bytes{of}"
        raise InvalidFile(
            f"{where}: the header line never ends{within}: a quote ({quote}) opened in it"
            " is not closed"
        )
    if end == -1 and not complete:
        raise InvalidFile(f"{where}: no header line in the first {len(text)} bytes{of}")
    raw = text if end == -1 else text[:end]
    return raw.removesuffix(b"\r").removeprefix(_UTF8_BOM)


def _first_record_end(text: bytes, quote: bytes) -> int:
    """Index of the first line break outside quotes, or -1 (as the engine's chunker splits)."""
    inside = False
    position = 0
    while (newline := text.find(b"\n", position)) != -1:
        inside ^= text.count(quote, position, newline) % 2 == 1
        if not inside:
            return newline
        position = newline + 1
    return -1


def check_encoding(text: bytes, where: str) -> None:
    """InvalidFile for content in a wide encoding (UTF-16/32, with or without a byte order mark):
    its NUL bytes would otherwise pass for UTF-8 and end up in the column names."""
    for bom, name in _WIDE_BOMS:
        if text.startswith(bom):
            raise InvalidFile(
                f"{where}: the content is {name} encoded (byte order mark {bom.hex()});"
                " chute reads UTF-8: convert the file to UTF-8"
            )
    sample = text[: 4096 - 4096 % 4] if len(text) >= 4096 else text[: len(text) - len(text) % 4]
    if len(sample) < 4 or b"\x00" not in sample:
        return
    per_slot = len(sample) // 4
    mostly_nul = [sample[i::4].count(0) > 0.6 * per_slot for i in range(4)]
    mostly_not = [sample[i::4].count(0) < 0.4 * per_slot for i in range(4)]
    for name, pattern in _WIDE_NULS:
        if all(mostly_nul[i] if nul else mostly_not[i] for i, nul in enumerate(pattern)):
            raise InvalidFile(
                f"{where}: the content looks {name} encoded (no byte order mark: NUL bytes"
                " between the characters); chute reads UTF-8: convert the file to UTF-8"
            )


def parse_header(raw: bytes, *, delimiter: str, quote: str = _QUOTE, where: str) -> list[str]:
    """The column names in the header line ``raw``, or InvalidFile."""
    check_encoding(raw, where)
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
        columns = next(csv.reader([line], delimiter=delimiter, quotechar=quote, strict=True))
    except csv.Error as exc:
        raise InvalidFile(f"{where}: the header line can't be parsed: {exc}") from exc
    _check_columns(columns, where)
    return columns


def _check_columns(columns: list[str], where: str) -> None:
    for i, name in enumerate(columns, start=1):
        if "\x00" in name:
            raise InvalidFile(
                f"{where}: the header (row 1) has a NUL byte (0x00) in the name of column {i}"
                f" (of {len(columns)} columns): is the file binary, or not UTF-8?"
            )
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
