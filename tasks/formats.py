"""Pure rules about keys: which ones chute accepts, how to read them, where their output goes."""

from __future__ import annotations

from tasks.errors import UnsupportedFormat
from tasks.models import Compression, InputFormat

_COMPRESSIONS: dict[str, Compression] = {".gz": "gzip"}
_FORMATS: dict[str, InputFormat] = {".csv": "csv", ".tsv": "tsv"}


def matches_suffix(key: str, suffixes: tuple[str, ...]) -> bool:
    """Case-insensitive suffix match (``DATA.CSV.GZ`` matches ``.csv.gz``)."""
    lowered = key.lower()
    return any(lowered.endswith(s.lower()) for s in suffixes)


def is_folder_marker(key: str) -> bool:
    return key.endswith("/")


def detect(key: str) -> tuple[InputFormat, Compression]:
    """Format and compression from the key's extensions, or UnsupportedFormat."""
    name = key.rsplit("/", 1)[-1].lower()
    compression: Compression = "none"
    for ext, comp in _COMPRESSIONS.items():
        if name.endswith(ext):
            compression = comp
            name = name[: -len(ext)]
            break
    for ext, fmt in _FORMATS.items():
        if name.endswith(ext) and len(name) > len(ext):
            return fmt, compression
    raise UnsupportedFormat(
        f"{key!r}: expected one of {', '.join(sorted(_FORMATS))}"
        f" optionally compressed with {', '.join(sorted(_COMPRESSIONS))}"
    )


def output_key(key: str, output_format: str = "jsonl") -> str:
    """``in/orders.csv.gz`` -> ``in/orders.csv.jsonl``: the input kind stays visible, no collisions
    between ``x.csv`` and ``x.tsv``."""
    base = key
    for ext in _COMPRESSIONS:
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
            break
    return f"{base}.{output_format}"
