"""Pure rules about keys: which ones chute accepts, how to read them, where their output goes."""

from __future__ import annotations

from tasks.errors import UnsupportedFormat
from tasks.formats import COMPRESSION_EXTENSIONS, DATA_EXTENSIONS, Compression


def matches_suffix(key: str, suffixes: tuple[str, ...]) -> bool:
    """Case-insensitive suffix match (``DATA.CSV.GZ`` matches ``.csv.gz``)."""
    lowered = key.lower()
    return any(lowered.endswith(s.lower()) for s in suffixes)


def is_folder_marker(key: str) -> bool:
    return key.endswith("/")


def split_compression(key: str) -> tuple[str, Compression]:
    """The key without its compression extension (case-insensitive), and the compression."""
    lowered = key.lower()
    for ext, kind in COMPRESSION_EXTENSIONS.items():
        if lowered.endswith(ext):
            return key[: -len(ext)], kind
    return key, "none"


def from_extension(key: str) -> Compression | None:
    """The compression the key's extension names, if any."""
    kind = split_compression(key)[1]
    return None if kind == "none" else kind


def detect(key: str) -> tuple[Compression, str | None]:
    """Compression and delimiter (None: sniff) from the key's extensions, or UnsupportedFormat."""
    base, compression = split_compression(key)
    name = base.rsplit("/", 1)[-1].lower()
    for ext, delimiter in DATA_EXTENSIONS.items():
        if name.endswith(ext) and len(name) > len(ext):
            return compression, delimiter
    raise UnsupportedFormat(
        f"{key!r}: expected one of {', '.join(sorted(DATA_EXTENSIONS))}"
        f" optionally compressed with {', '.join(sorted(COMPRESSION_EXTENSIONS))}"
    )


def output_base(key: str) -> str:
    """``in/orders.csv.gz`` -> ``in/orders.csv``: outputs are ``<base>.jsonl``/``.parquet``; the
    input kind stays visible and ``x.csv``/``x.tsv`` don't collide."""
    return split_compression(key)[0]
