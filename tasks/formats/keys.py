"""Pure rules about keys: which ones chute accepts, how to read them, where everything chute
writes for a file goes (outputs, rejected rows, the quarantine report, a Batch job's error)."""

from __future__ import annotations

from typing import Final

from tasks.errors import UnsupportedFormat
from tasks.formats import COMPRESSION_EXTENSIONS, DATA_EXTENSIONS, Compression, OutputFormat

REPORT_SUFFIX: Final = ".error.json"
"""The quarantine report beside the quarantined original: ``<key>.error.json``."""
REJECTED_SUFFIX: Final = ".rejected.jsonl"
BATCH_FAILURES_PREFIX: Final = "_chute/batch-failures/"
"""Where a Batch job leaves the error it raised (exits 65, 66, 73), in the output bucket,
because a container can't put it into the job's status: Quarantine reads it into its report,
NameBatchFailure raises it again; both delete it (the stack also expires the prefix)."""


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


def output_key(base: str, output_format: OutputFormat) -> str:
    """``<base>.jsonl`` / ``<base>.parquet`` (``base``: :func:`output_base` of the source key)."""
    return f"{base}.{output_format}"


def rejected_key(base: str) -> str:
    """The rows a contract dropped: ``<base>.rejected.jsonl``."""
    return f"{base}{REJECTED_SUFFIX}"


def report_key(key: str) -> str:
    """The quarantine report of the staged ``key``: ``<key>.error.json``."""
    return f"{key}{REPORT_SUFFIX}"


def batch_failure_key(execution: str) -> str:
    """Where the Batch job of ``execution`` leaves its error (:data:`BATCH_FAILURES_PREFIX`)."""
    return f"{BATCH_FAILURES_PREFIX}{execution}.json"


FANOUT_PREFIX: Final = "_chute/fanout/"
"""Where a fanned-out conversion keeps its plan and the parts' outputs until they are joined
(output bucket; removed when the file is published or given up, and expired by the stack)."""


def fanout_key(execution: str, name: str) -> str:
    """An object of ``execution``'s fan-out: ``state.json``, or a round's ``r<N>/...``."""
    return f"{FANOUT_PREFIX}{execution}/{name}"


FANOUT_OUTCOME: Final = "outcome.json"
"""The commit's verdict (its result, or the file's error), kept when the rest is removed: a
retried commit whose answer was lost answers again from it (tasks.fanout.domain.commit)."""


FANOUT_MANIFEST: Final = "items.json"
FANOUT_MANIFESTS: Final = f"{FANOUT_PREFIX}*/{FANOUT_MANIFEST}"
"""Every fan-out's manifests, as an IAM resource pattern (what the state machine reads)."""


def fanout_manifest_key(execution: str, round_: int) -> str:
    """Round ``round_``'s parts to convert: a JSON array the Distributed Map reads (ItemReader)."""
    return fanout_key(execution, f"r{round_}/{FANOUT_MANIFEST}")


def fanout_part_key(execution: str, round_: int, index: int, suffix: str) -> str:
    """Part ``index``'s object of round ``round_``: ``json`` (what it found) or a format."""
    return fanout_key(execution, f"r{round_}/{index:05d}.{suffix}")
