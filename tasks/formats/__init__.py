"""File formats chute knows, in one place: compressions, delimiters, output formats, extensions,
magic bytes. ``keys`` holds the rules about object keys (accepted suffixes, the compression and
delimiter an extension names, where outputs go) built on these tables.

Pure data and functions over bytes and strings: imports only the standard library and
``tasks.errors`` (nothing heavy -- Validate, the trigger and ``tasks.names`` import it at cold
start). The codecs that read these formats stay with their users (``tasks.convert.compression``
streams, Validate's bounded prefix decompression), importing the tables from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

Compression = Literal["gzip", "zstd", "bz2", "none"]
OutputFormat = Literal["jsonl", "parquet"]
Delimiter = Literal[",", "\t", "|", ";"]

COMPRESSIONS: Final[tuple[Compression, ...]] = ("gzip", "zstd", "bz2", "none")
OUTPUT_FORMATS: Final[tuple[OutputFormat, ...]] = ("jsonl", "parquet")
DELIMITERS: Final[tuple[Delimiter, ...]] = (",", "\t", "|", ";")
"""The delimiters a file may use (declared by a contract, or sniffed from the header line)."""

COMPRESSION_EXTENSIONS: Final[dict[str, Compression]] = {
    ".gz": "gzip",
    ".zst": "zstd",
    ".bz2": "bz2",
}
DATA_EXTENSIONS: Final[dict[str, Delimiter | None]] = {
    ".csv": None,
    ".tsv": "\t",
    ".txt": None,
    ".psv": "|",
}
"""Data extensions and their delimiter (None: sniffed from the header line)."""


@dataclass(frozen=True)
class Magic:
    """How a compressed stream starts, at two strengths.

    ``starts``: enough when the key's extension declares the compression (what follows is the
    decompressor's to judge, and it names the corruption). ``sniffs``: enough to say that content
    nothing declares is compressed, without mistaking text for it (only bzip2's differ: "BZh" can
    start a text header). ``prefix`` is the fixed start of the usual form, for messages."""

    prefix: bytes
    starts: re.Pattern[bytes]
    sniffs: re.Pattern[bytes]


# A frame, or a skippable frame first (pzstd writes one).
_ZSTD = re.compile(rb"\x28\xb5\x2f\xfd|[\x50-\x5f]\x2a\x4d\x18")
MAGIC: Final[dict[Compression, Magic]] = {
    "gzip": Magic(b"\x1f\x8b", re.compile(rb"\x1f\x8b"), re.compile(rb"\x1f\x8b")),
    "zstd": Magic(b"\x28\xb5\x2f\xfd", _ZSTD, _ZSTD),
    # Sniffed: the block size digit and the magic of the first block, or of the end of the
    # stream (an empty file compressed).
    "bz2": Magic(
        b"BZh", re.compile(rb"BZh"), re.compile(rb"BZh[1-9](1AY&SY|\x17\x72\x45\x38\x50\x90)")
    ),
}
MAGIC_BYTES: Final = 10
"""How many leading bytes :func:`from_magic` looks at."""


def starts_with_magic(data: bytes, compression: Compression) -> bool:
    """Whether ``data`` starts like a stream (a member, a frame) of the declared ``compression``."""
    return compression != "none" and MAGIC[compression].starts.match(data) is not None


def from_magic(head: bytes) -> Compression:
    """The compression the first bytes show when nothing declares one ("none": they show none)."""
    for kind, magic in MAGIC.items():
        if magic.sniffs.match(head):
            return kind
    return "none"
