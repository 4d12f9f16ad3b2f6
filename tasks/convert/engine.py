"""The conversion engine: delimited text in (any of gzip/zstd/bz2/none), JSON Lines and/or
Parquet out, streamed in bounded memory, both cores busy.

    source ─▶ decompress ─▶ header + delimiter ─▶ native core (chute_native, Rust):
           cut into record-aligned chunks ─▶ [worker threads] parse ─▶ check ─▶ encode
           ─▶ [in file order] JSON Lines bytes / Parquet row groups ─▶ [a sink thread] sinks

``reading`` decompresses the stream (the decompression limits apply there) and parses the
header; this module hands every block to the native core, which does the rest of the chunk
loop with the GIL released (native/src/convert.rs): it parses each chunk exactly as Python's
``csv.reader(strict=True)`` reads it, checks every record's width and UTF-8, names the exact
row at fault, types the values -- inferred (``options.infer``/``types``) or per a data
contract (``options.typing``: its checks and error policy, rejected rows) -- and encodes JSON
Lines and Parquet (row groups of up to 1M rows, dictionary encoding, statistics, page index).
Text mode keeps every value exactly as written (an empty field is "", never null). Inferred
types may widen: then ``Widened`` is raised and ``convert_restarting`` converts again with the
types the whole file fits. ``writes`` calls the sinks in order on a thread of their own.

Rows are numbered as people count lines in a spreadsheet: the header is row 1; fully empty
lines are skipped and not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import BinaryIO

import chute_native

from tasks import cores
from tasks.convert import chunker
from tasks.convert.reading import blocks, open_source
from tasks.convert.typed import ContractTyping
from tasks.convert.writes import OrderedWrites, Sink
from tasks.data_contracts.check import problems_of
from tasks.data_contracts.model import COLUMN_TYPES, ColumnType, Problem, clip
from tasks.errors import MalformedContent
from tasks.formats import Compression, OutputFormat
from tasks.settings import DecompressionLimits

__all__ = [
    "CHUNK_BYTES",
    "EngineOptions",
    "EngineResult",
    "Sink",
    "Widened",
    "Widening",
    "convert_restarting",
    "convert_stream",
]

CHUNK_BYTES = 4 * 1024 * 1024
"""Input bytes per chunk: memory stays ~10x this."""
WORKERS = cores.available()
"""Conversion threads: the cores this process is given (affinity and cgroup CPU quota)."""
ZSTD_LEVEL = 3
"""Parquet page compression (zstd's own default level)."""
SINK_DEPTH = 2
"""Output chunks handed to the sink thread and not yet written, at most."""
ROW_GROUP_ROWS = 1 << 20
"""Rows per Parquet row group at most (as arrow-rs and Arrow C++ default)."""
ROW_GROUP_BYTES = 128 << 20
"""Input bytes per Parquet row group at most: memory holds one group's compressed pages."""


@dataclass(frozen=True)
class EngineOptions:
    outputs: tuple[OutputFormat, ...] = ("jsonl",)
    delimiter: str | None = None  # None: sniffed from the header line
    quote: str = '"'
    compression: Compression | None = None  # None: from the magic bytes
    chunk_bytes: int = CHUNK_BYTES
    workers: int = WORKERS
    max_record_bytes: int = chunker.MAX_RECORD_BYTES
    # A data contract's types and checks (None: inferred types, or text).
    typing: ContractTyping | None = None
    # How far compressed content may expand (None: no limits).
    limits: DecompressionLimits | None = None
    # Without a contract (typing None): infer each column's type from the values (the native
    # core; see ``convert_restarting``), or convert with these types (one per column: the
    # schema a conversion that had to widen found). Neither: text mode.
    infer: bool = False
    types: tuple[ColumnType, ...] | None = None
    # Parquet row groups (native writer): closed at this many rows or input bytes.
    row_group_rows: int = ROW_GROUP_ROWS
    row_group_bytes: int = ROW_GROUP_BYTES

    def __post_init__(self) -> None:
        # A read of 0 bytes means the end of the stream: the rest would be silently dropped.
        if self.chunk_bytes < 1 or self.workers < 1 or self.max_record_bytes < 1:
            raise ValueError("chunk_bytes, workers and max_record_bytes must be at least 1")
        if sum((self.typing is not None, self.infer, self.types is not None)) > 1:
            raise ValueError("typing (a contract), infer and types are exclusive")


@dataclass(frozen=True)
class Widening:
    """A column whose type the values widened (``from_type`` was inferred from the first
    chunk): ``row``/``value`` is where the first value that didn't fit was (the value cut to
    80 characters)."""

    column: str
    from_type: ColumnType
    to_type: ColumnType
    row: int
    value: str

    def to_dict(self) -> dict[str, str | int]:
        return {
            "column": self.column,
            "from": self.from_type,
            "to": self.to_type,
            "row": self.row,
            "value": clip(self.value),
        }


class Widened(Exception):
    """Inferred types had to be widened: the output is given up (the caller discards what the
    sinks got) and the file must be converted again with ``types``. Not a PermanentError."""

    def __init__(
        self,
        types: tuple[ColumnType, ...],
        widenings: tuple[Widening, ...],
        result: EngineResult,
    ) -> None:
        super().__init__(", ".join(f"{w.column}: {w.from_type} -> {w.to_type}" for w in widenings))
        self.types = types
        self.widenings = widenings
        self.result = result
        """What the run found (columns, delimiter, compression; its rows were given up)."""


@dataclass
class EngineResult:
    rows: int = 0  # rows written
    rejected_rows: int = 0
    columns: list[str] = field(default_factory=list)
    delimiter: str = ","
    compression: Compression = "none"
    schema: dict[str, ColumnType] | None = None
    """Inferred (or given) types: every column's; None in text mode and with a contract."""
    problems: tuple[Problem, ...] = ()
    """A contract's first problems (its report limit; rows it dropped), in file order."""
    problem_count: int = 0
    widened: tuple[Widening, ...] = ()
    """The columns a restart widened (set by ``convert_restarting``)."""
    masks: tuple[int, ...] | None = None
    """Typed mode: each column's mask of the types its values fit (``chute_native.kind_of``);
    the parts of one file AND theirs into the whole file's (tasks.fanout)."""


def convert_restarting(
    attempt: Callable[[EngineOptions], EngineResult], options: EngineOptions
) -> EngineResult:
    """Runs ``attempt`` (a conversion: it opens the source and the sinks, and discards them on
    any exception) with ``options``; if inferred types had to be widened, runs it once more with
    the types the whole file fits (the source read again). At most one restart: the first run
    read every value."""
    try:
        return attempt(options)
    except Widened as widened:
        again = replace(options, infer=False, types=widened.types)
        result = attempt(again)
        result.widened = widened.widenings
        return result


def convert_stream(
    source: BinaryIO,
    options: EngineOptions,
    sinks: Mapping[OutputFormat, Sink],
    rejected_sink: Sink | None = None,
) -> EngineResult:
    """Convert ``source`` to every format in ``options.outputs`` (each written to its sink; a
    contract's rejected rows to ``rejected_sink``).

    Raises MalformedContent (a PermanentError) for content that can't be converted,
    ContractViolation when the contract rejects the file, DecompressionLimitExceeded past
    ``options.limits``; the sinks may have received part of the output by then (the caller
    discards it).
    """
    try:
        return _convert_stream(source, options, sinks, rejected_sink)
    except BaseException as exc:
        # The native core gave up on the content (a Rust panic is a BaseException: it would
        # otherwise end the worker process with no report). The content is what it choked on.
        if type(exc).__name__ != "PanicException":
            raise
        raise MalformedContent(
            f"the content can't be converted: the parser failed on it ({_first_line(exc)})"
        ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _typing(options: EngineOptions, header: list[str]) -> chute_native.Typing:
    """What the native core types the values by: a contract, inferred or given types, or
    None (text)."""
    if options.typing is not None:
        return options.typing.start(header)  # the header checked against the contract first
    if options.infer:
        return "infer"
    return list(options.types) if options.types is not None else None


def _converter(options: EngineOptions, header: list[str], delimiter: str) -> chute_native.Converter:
    return chute_native.Converter(
        header,
        chute_native.Dialect(delimiter, options.quote, options.max_record_bytes),
        list(options.outputs),
        _typing(options, header),
        workers=options.workers,
        layout=chute_native.Layout(ZSTD_LEVEL, options.row_group_rows, options.row_group_bytes),
    )


def _convert_stream(
    source: BinaryIO,
    options: EngineOptions,
    sinks: Mapping[OutputFormat, Sink],
    rejected_sink: Sink | None,
) -> EngineResult:
    opened = open_source(
        source,
        compression=options.compression,
        limits=options.limits,
        delimiter=options.delimiter,
        quote=options.quote,
    )
    header = opened.header
    result = EngineResult(
        columns=header, delimiter=opened.delimiter, compression=opened.compression
    )
    core = _converter(options, header, opened.delimiter)
    writes = OrderedWrites(SINK_DEPTH)

    def write(chunks: list[chute_native.Chunk], error: Exception | None) -> None:
        """Writes each chunk in file order; then reports the chunk that failed, if any."""
        for rows, jsonl, parquet, rejected_rows, rejected in chunks:
            result.rows += rows
            result.rejected_rows += rejected_rows
            if jsonl:
                writes.submit(sinks["jsonl"], jsonl)
            if parquet:
                writes.submit(sinks["parquet"], parquet)
            if rejected and rejected_sink is not None:
                writes.submit(rejected_sink, rejected)
        if error is not None:
            raise _error(options, error) from None

    try:
        for block in blocks(opened, options.chunk_bytes):
            write(*core.feed(block))
        chunks, error, footer = core.finish()
        write(chunks, error)
        if core.restart():
            raise _widened(core, result)
        if footer:
            writes.submit(sinks["parquet"], footer)
        writes.drain()
    except BaseException:
        writes.abandon()
        raise
    _finished(core, result)
    return result


def _error(options: EngineOptions, error: Exception) -> Exception:
    """The native core's error as the workflow names it."""
    if isinstance(error, chute_native.ContractFailed) and options.typing is not None:
        return options.typing.violation(error)
    return MalformedContent(str(error))


def _finished(core: chute_native.Converter, result: EngineResult) -> None:
    """What the run found: the schema (inferred or given types), a contract's problems."""
    schema = core.schema()
    if schema is not None:
        result.schema = dict(zip(result.columns, map(_column_type, schema), strict=True))
    masks = core.masks()
    result.masks = tuple(masks) if masks is not None else None
    problem_count, _, problems = core.violation()
    result.problem_count = problem_count
    result.problems = problems_of(problems)


def _column_type(name: str) -> ColumnType:
    if name not in COLUMN_TYPES:
        raise ValueError(f"the native core named an unknown type {name!r}")
    return name


def _widened(core: chute_native.Converter, result: EngineResult) -> Widened:
    schema = core.schema()
    assert schema is not None, "typed mode"
    types = tuple(map(_column_type, schema))
    widenings = tuple(
        Widening(
            result.columns[column], _column_type(before), _column_type(after), row, clip(value)
        )
        for column, before, after, row, value in core.widenings()
    )
    result.schema = dict(zip(result.columns, types, strict=True))
    result.widened = widenings
    return Widened(types, widenings, result)
