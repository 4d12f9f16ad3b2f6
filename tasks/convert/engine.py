"""The conversion engine: delimited text in (any of gzip/zstd/bz2/none), JSON Lines and/or
Parquet out, streamed in bounded memory, both cores busy.

    source ─▶ decompress ─▶ header + delimiter ─▶ native core (chute_native, Rust):
           cut into record-aligned chunks ─▶ [worker threads] parse ─▶ check ─▶ encode
           ─▶ [in file order] JSON Lines bytes / Parquet row groups ─▶ [a sink thread] sinks

This module reads and decompresses the stream (the decompression limits apply there), parses
the header and hands every block to the native core, which does the rest of the chunk loop with
the GIL released (native/src/convert.rs): it parses each chunk exactly as Python's
``csv.reader(strict=True)`` reads it, checks every record's width and UTF-8, names the exact
row at fault, types the values (inferred types, ``options.infer``/``types``), and encodes JSON
Lines and Parquet (row groups of up to 1M rows, dictionary encoding, statistics, page index).
Text mode keeps every value exactly as written (an empty field is "", never null). Inferred
types may widen: then ``Widened`` is raised and ``convert_restarting`` converts again with the
types the whole file fits. A data contract's mode gets each chunk's text columns back and types
them per the contract (ChunkTyping, polars), then writes them here.

Rows are numbered as people count lines in a spreadsheet: the header is row 1; fully empty
lines are skipped and not counted.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

import chute_native
from isal.igzip_lib import IsalError
from zstandard import ZstdError

from tasks import cores
from tasks.convert import chunker, dialect
from tasks.convert.compression import open_decompressed
from tasks.data_contracts.model import COLUMN_TYPES, ColumnType, clip
from tasks.errors import MalformedContent
from tasks.formats import Compression, OutputFormat
from tasks.settings import DecompressionLimits

if TYPE_CHECKING:  # typed mode only: text mode never imports polars or pyarrow
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

Sink = Callable[[bytes], object]

CHUNK_BYTES = 4 * 1024 * 1024
"""Input bytes per chunk (and per Parquet row group): memory stays ~10x this."""
WORKERS = cores.available()
"""Conversion threads: the cores this process is given (affinity and cgroup CPU quota)."""
BOM = codecs.BOM_UTF8
SINK_BUFFER_BYTES = 1 << 20
"""Typed mode: Parquet bytes buffered natively before each call into the (Python) sink."""
ZSTD_LEVEL = 3
"""Parquet page compression (zstd's own default level)."""
SINK_DEPTH = 2
ROW_GROUP_ROWS = 1 << 20
"""Rows per Parquet row group at most (as arrow-rs and Arrow C++ default)."""
ROW_GROUP_BYTES = 128 << 20
"""Input bytes per Parquet row group at most: memory holds one group's compressed pages."""
"""Text mode: output chunks handed to the sink thread and not yet written, at most."""


@dataclass(frozen=True)
class EngineOptions:
    outputs: tuple[OutputFormat, ...] = ("jsonl",)
    delimiter: str | None = None  # None: sniffed from the header line
    quote: str = '"'
    compression: Compression | None = None  # None: from the magic bytes
    chunk_bytes: int = CHUNK_BYTES
    workers: int = WORKERS
    max_record_bytes: int = chunker.MAX_RECORD_BYTES
    # Typed mode: a callable that turns one text chunk into (typed frame, rejected rows frame or
    # None), raising a PermanentError when the file must be rejected. None: text mode.
    typing: ChunkTyping | None = None
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


class ChunkTyping(Protocol):
    """Typed mode's hook into the engine (a data contract, or inferred types)."""

    def start(self, header: list[str]) -> pa.Schema | None:
        """Check the header; the output schema (None: known from the first typed chunk)."""
        ...

    def apply(
        self, chunk: pl.DataFrame, first_row: int
    ) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """Typed rows to write, and rejected rows (original text) if any. May raise."""
        ...


def convert_stream(
    source: BinaryIO,
    options: EngineOptions,
    sinks: Mapping[OutputFormat, Sink],
    rejected_sink: Sink | None = None,
) -> EngineResult:
    """Convert ``source`` to every format in ``options.outputs`` (each written to its sink).

    Raises MalformedContent (a PermanentError) for content that can't be converted,
    DecompressionLimitExceeded past ``options.limits``; the sinks may have received part of the
    output by then (the caller discards it).
    """
    try:
        return _convert_stream(source, options, sinks, rejected_sink)
    except BaseException as exc:
        # A native library gave up on the content (a Rust panic, in polars or in chute_native,
        # is a BaseException: it would otherwise end the worker process with no report). The
        # content is what it choked on.
        if type(exc).__name__ != "PanicException":
            raise
        raise MalformedContent(
            f"the content can't be converted: the parser failed on it ({_first_line(exc)})"
        ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _convert_stream(
    source: BinaryIO,
    options: EngineOptions,
    sinks: Mapping[OutputFormat, Sink],
    rejected_sink: Sink | None,
) -> EngineResult:
    stream, compression = open_decompressed(source, options.compression, options.limits)
    with _content_errors("the header"):
        header_bytes, rest = chunker.first_record(stream, quote=options.quote.encode())
    if header_bytes.startswith(BOM):
        header_bytes = header_bytes[len(BOM) :]
    if not header_bytes.strip():
        raise MalformedContent("no header: the file has no content")
    delimiter = options.delimiter or dialect.sniff(header_bytes, quote=options.quote.encode())
    header = _parse_header(header_bytes, delimiter, options.quote)
    result = EngineResult(columns=header, delimiter=delimiter, compression=compression)
    typed = _Typed(options, sinks, header, rejected_sink, result) if options.typing else None
    core = chute_native.Converter(
        header,
        delimiter,
        options.quote,
        jsonl="jsonl" in options.outputs and typed is None,
        parquet="parquet" in options.outputs and typed is None,
        columns=typed is not None,
        workers=options.workers,
        max_record=options.max_record_bytes,
        zstd_level=ZSTD_LEVEL,
        infer=options.infer,
        types=list(options.types) if options.types is not None else None,
        row_group_rows=options.row_group_rows,
        row_group_bytes=options.row_group_bytes,
    )

    writes = _OrderedWrites(SINK_DEPTH)

    def write(chunks: list[chute_native.Chunk], error: chute_native.BadContent | None) -> None:
        """Writes each chunk in file order; then reports the chunk that failed, if any."""
        for rows, jsonl, parquet, columns in chunks:
            if typed is not None:
                assert columns is not None
                typed.write(rows, columns)
                continue
            result.rows += rows
            if jsonl:
                writes.submit(sinks["jsonl"], jsonl)
            if parquet:
                writes.submit(sinks["parquet"], parquet)
        if error is not None:
            raise MalformedContent(str(error)) from None

    try:
        size = options.chunk_bytes
        for start in range(0, len(rest), size):  # read with the header: cut as any read
            write(*core.feed(rest[start : start + size]))
        while True:
            with _content_errors("the data"):
                block = stream.read(size)
            if not block:
                break
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
        if typed is not None:
            typed.discard()
        raise
    if typed is not None:
        typed.close()
    schema = core.schema()
    if schema is not None:
        result.schema = dict(zip(header, map(_column_type, schema), strict=True))
    masks = core.masks()
    result.masks = tuple(masks) if masks is not None else None
    return result


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


class _OrderedWrites:
    """Text mode's sink calls, in order, on one thread of their own: while a chunk's output is
    written (a file's pages, an S3 part upload) the next blocks are read, decompressed and
    converted. At most ``depth`` calls wait, so memory stays bounded; a sink's error is raised
    by the next ``submit`` or by ``drain``."""

    def __init__(self, depth: int) -> None:
        self._depth = depth
        self._pending: deque[Future[object]] = deque()
        self._thread: ThreadPoolExecutor | None = None

    def submit(self, sink: Sink, data: bytes) -> None:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink")
        self._pending.append(self._thread.submit(sink, data))
        while len(self._pending) > self._depth or (self._pending and self._pending[0].done()):
            self._pending.popleft().result()

    def drain(self) -> None:
        """Waits for every write (raising the first error)."""
        while self._pending:
            self._pending.popleft().result()
        self._close()

    def abandon(self) -> None:
        """After a failure: writes not started are dropped, the one running is waited for (the
        caller discards the output next, so nothing may still be writing to it)."""
        for pending in self._pending:
            pending.cancel()
        self._pending.clear()
        self._close()

    def _close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None


_READ_ERRORS: tuple[type[BaseException], ...] = (
    chunker.UnterminatedQuote,
    OSError,
    EOFError,
    ZstdError,
    cast(type[BaseException], IsalError),  # untyped; not an OSError
)


@contextlib.contextmanager
def _content_errors(where: str) -> Any:
    """Decompression failures while reading ``where`` become MalformedContent."""
    try:
        yield
    except _READ_ERRORS as exc:
        error = _content_error(exc, where)
        if error is exc:  # e.g. a network error: keeps its type for the caller to classify
            raise
        raise error from exc


def _content_error(exc: BaseException, where: str) -> Exception:
    """Decompression failures are bad files; other OSErrors (network) keep their type."""
    name = type(exc).__name__
    if name in {"BadGzipFile", "ZstdError", "IsalError", "error"} or isinstance(exc, EOFError):
        return MalformedContent(f"corrupt or truncated compressed data in {where}: {exc}")
    if isinstance(exc, OSError) and "Invalid data stream" in str(exc):  # bz2
        return MalformedContent(f"corrupt compressed data in {where}: {exc}")
    if isinstance(exc, chunker.UnterminatedQuote):
        return MalformedContent(f"cannot parse {where}: {exc}")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


class _Typed:
    """Typed mode: each chunk's text columns typed by ``options.typing``, then written."""

    def __init__(
        self,
        options: EngineOptions,
        sinks: Mapping[OutputFormat, Sink],
        header: list[str],
        rejected_sink: Sink | None,
        result: EngineResult,
    ) -> None:
        assert options.typing is not None
        self.typing = options.typing
        self.header = header
        self.rejected_sink = rejected_sink
        self.result = result
        self.data_rows = 0  # data rows before the chunk being written
        self.writers = _Writers(options.outputs, sinks, self.typing.start(header), header)
        # Encoding chunk k (pyarrow, polars: both release the GIL) overlaps typing chunk k + 1.
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")
        self._encoding: Future[None] | None = None

    def _encoded(self) -> None:
        """Waits for the chunk being encoded (its error, if any, is raised here)."""
        if self._encoding is not None:
            encoding, self._encoding = self._encoding, None
            encoding.result()

    def close(self) -> None:
        try:
            self._encoded()
            self.writers.close()
        finally:
            self._encoder.shutdown()

    def discard(self) -> None:
        with contextlib.suppress(BaseException):
            self._encoded()
        self._encoder.shutdown()
        self.writers.discard()

    def write(self, rows: int, columns: list[tuple[bytes, bytes]]) -> None:
        import polars as pl
        import pyarrow as pa

        arrays = [
            pa.LargeStringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(values))
            for offsets, values in columns
        ]
        chunk = pl.from_arrow(pa.Table.from_arrays(arrays, names=self.header))
        assert isinstance(chunk, pl.DataFrame)
        frame, rejected = self.typing.apply(chunk, self.data_rows + 2)
        if rejected is not None and rejected.height:
            self.result.rejected_rows += rejected.height
            if self.rejected_sink is not None:
                self.rejected_sink(_ndjson(rejected))
        self.data_rows += rows
        self._encoded()
        self._encoding = self._encoder.submit(self.writers.write, frame)
        self.result.rows += frame.height


def _parse_header(raw: bytes, delimiter: str, quote: str) -> list[str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedContent("header (row 1): not valid UTF-8") from exc
    try:
        header = next(csv.reader([text], delimiter=delimiter, quotechar=quote, strict=True))
    except csv.Error as exc:
        raise MalformedContent(f"header (row 1): cannot parse: {exc}") from exc
    seen: dict[str, int] = {}
    for index, name in enumerate(header, start=1):
        if not name:
            raise MalformedContent(f"header (row 1): column {index} has an empty name")
        if "\x00" in name:  # Arrow's C interface can't carry it (polars would panic)
            raise MalformedContent(
                f"header (row 1): column {index} has a NUL byte (0x00) in its name"
                " (is the file UTF-16 or binary?)"
            )
        if name in seen:
            raise MalformedContent(
                f"header (row 1): duplicate column name {name!r} (columns {seen[name]} and {index})"
            )
        seen[name] = index
    return header


def _nowhere(data: bytes) -> None:
    pass


def _ndjson(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ndjson(buffer)
    return buffer.getvalue()


DICTIONARY_SAMPLE = 4096
"""Leading values of a column that decide its Parquet encoding (as in native/src/convert.rs)."""


def _repeating(frame: pl.DataFrame) -> list[str]:
    """The columns worth dictionary encoding: at most half of the first values distinct
    (elsewhere the dictionary's indices compress worse than the plain values)."""
    sample = frame.head(DICTIONARY_SAMPLE)
    return [col.name for col in sample.iter_columns() if 2 * col.n_unique() <= sample.height]


class _SinkFile(io.RawIOBase):
    """A write-only file over a sink."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._position = 0

    def writable(self) -> bool:
        return True

    def discard(self) -> None:
        self._sink = _nowhere

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._sink(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position


class _Writers:
    """Typed mode's writers: JSON Lines by polars, Parquet by pyarrow (typed columns)."""

    def __init__(
        self,
        outputs: tuple[OutputFormat, ...],
        sinks: Mapping[OutputFormat, Sink],
        schema: pa.Schema | None,
        header: list[str],
    ) -> None:
        """``schema`` None: taken from the first frame written (inferred types)."""
        import pyarrow as pa

        self._outputs = outputs
        self._sinks = sinks
        self._parquet: pq.ParquetWriter | None = None
        self._schema = schema
        self._fallback = pa.schema([pa.field(name, pa.large_string()) for name in header])
        if "parquet" in outputs:
            self._file = _SinkFile(sinks["parquet"])
            # pyarrow writing to a Python file takes the GIL for every page: a native buffer in
            # front calls into Python once per SINK_BUFFER_BYTES instead.
            self._stream = pa.BufferedOutputStream(
                pa.PythonFile(self._file, mode="w"), buffer_size=SINK_BUFFER_BYTES
            )

    def _open(self, schema: pa.Schema, first: pl.DataFrame | None) -> pq.ParquetWriter:
        """The writer, opened on the first frame: it tells which columns repeat values."""
        import pyarrow.parquet as pq

        self._schema = schema
        self._parquet = pq.ParquetWriter(
            self._stream,
            schema,
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            use_dictionary=_repeating(first) if first is not None else False,
            write_statistics=True,
        )
        return self._parquet

    def write(self, frame: pl.DataFrame) -> None:
        if not frame.height:
            return
        if "jsonl" in self._outputs:
            self._sinks["jsonl"](_ndjson(frame))
        if "parquet" in self._outputs:
            table = frame.to_arrow()  # polars' strings arrive as large_string: no copy
            writer = self._parquet or self._open(self._schema or table.schema, frame)
            if table.schema != self._schema:
                table = table.cast(self._schema)
            writer.write_table(table)

    def close(self) -> None:
        if "parquet" in self._outputs:
            writer = self._parquet or self._open(self._schema or self._fallback, None)
            writer.close()
            self._parquet = None
            self._stream.close()

    def discard(self) -> None:
        """After a failure: close the Parquet writer without writing to the sink (a closed
        file or an aborted upload by then), instead of its footer landing there on GC."""
        if self._parquet is not None:
            self._file.discard()
            self._parquet.close()
            self._parquet = None
            with contextlib.suppress(Exception):
                self._stream.close()
