"""chute's conversion core (Rust, native/src): see tasks/convert/engine.py, its one caller."""

from typing import Literal

from typing_extensions import Buffer

class Output:
    """Output bytes lent without a copy (the buffer protocol: a sink writes them as it would
    ``bytes``); once released, the buffer is taken again for a later chunk."""

    def __buffer__(self, flags: int, /) -> memoryview: ...
    def __len__(self) -> int: ...
    def __bytes__(self) -> bytes: ...

Chunk = tuple[int, Output | None, bytes | None, int, bytes | None]
"""One chunk, in file order: (rows written, JSON Lines, Parquet bytes (a row group when the
chunk filled one), a contract's rejected rows: how many, and as JSON Lines)."""

ContractColumn = tuple[
    str, str, int | None, bool, bool, str | None, list[str] | None, list[int] | None
]
"""(name, type, file column index or None (absent: all null), checked (a contract column, not
a kept extra), nullable, pattern, allowed strings, allowed ints)."""

NULL_MARKERS: list[str]
"""Values that are null in a column typed by inference (kept as written in a text column)."""

class BadContent(ValueError):
    """The content can't be converted; the message names the row."""

class ContractFailed(ValueError):
    """The data contract rejects the file. ``args``: (problem count, bad rows, the first
    problems as (row, column, value, reason), detail or None)."""

    args: tuple[int, int, list[tuple[int, str, str, str]], str | None]

class Dialect:
    """How records are written: one ASCII character each (not CR/LF, not the same), and the
    longest record accepted."""

    def __init__(self, delimiter: str, quote: str, max_record: int) -> None: ...

class Layout:
    """The Parquet file's layout: zstd level, row groups ending at ``row_group_rows`` rows or
    ``row_group_bytes`` of input."""

    def __init__(
        self, zstd_level: int = 3, row_group_rows: int = 1 << 20, row_group_bytes: int = 128 << 20
    ) -> None: ...

class Contract:
    """A data contract planned on a file's header (tasks/data_contracts/check.py); raises
    ValueError for a pattern Rust's regex can't compile."""

    def __init__(
        self,
        columns: list[ContractColumn],
        nulls: list[str],
        *,
        policy: Literal["reject", "drop_rows"],
        max_rejected_rows: int,
        report_limit: int,
    ) -> None: ...

def pattern_error(pattern: str) -> str | None:
    """Why ``pattern`` can't be a contract's (Rust's regex, anchored), or None."""

Typing = Contract | Literal["infer"] | list[str] | None
"""A contract; types inferred (widened as they come, ``restart``); these types (``schema()``
of a conversion that must restart); or None: every value text."""

class Converter:
    def __init__(
        self,
        header: list[str],
        dialect: Dialect,
        outputs: list[str],
        typing: Typing,
        *,
        workers: int,
        layout: Layout,
    ) -> None:
        """``outputs``: "jsonl" and/or "parquet" (none: values read and typed only)."""
    def feed(self, block: Buffer) -> tuple[list[Chunk], BadContent | ContractFailed | None]:
        """The chunks ``block`` (any contiguous bytes, copied) completed, and the error to raise
        once they are written."""
    def finish(self) -> tuple[list[Chunk], BadContent | ContractFailed | None, bytes]:
        """The last chunks, the error if any, and the Parquet file's last bytes."""
    def schema(self) -> list[str] | None:
        """Inferred or given types: each column's type that every value read fits (the whole
        file's after ``finish``)."""
    def masks(self) -> list[int] | None:
        """Inferred or given types: each column's mask of the types every value read fits; the
        masks of a file's parts AND into the whole file's."""
    def restart(self) -> bool:
        """Whether the output was given up for a wider type: convert again with
        ``typing=schema()``."""
    def widenings(self) -> list[tuple[int, str, str, int, str]]:
        """(column index, type before, type after, row, first value that didn't fit)."""
    def violation(self) -> tuple[int, int, list[tuple[int, str, str, str]]]:
        """A contract's findings: (problem count, bad rows, the first problems)."""

def kind_of(mask: int) -> str | None:
    """The type of a column whose values fit ``mask``; None: null markers only (any type)."""
