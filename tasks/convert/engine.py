"""The conversion engine: delimited text in (any of gzip/zstd/bz2/none), JSON Lines and/or
Parquet out, streamed in bounded memory, both cores busy.

    source ─▶ decompress ─▶ header + delimiter ─▶ record-aligned chunks (chunker.py)
           ─▶ [2 workers] parse (polars, all columns as text) ─▶ check ─▶ contract/typing
           ─▶ [in order] JSON Lines bytes / Parquet row groups ─▶ sinks

The fast path parses each chunk with polars. Every chunk is checked cheaply (the number of
delimiters outside quoted values must equal rows * (columns - 1)); a chunk that fails the check
or that polars rejects (broken quoting, bytes that aren't UTF-8) is parsed again by the precise
path (stdlib csv) only to find and name the exact row. Text mode keeps every value exactly as
written (an empty field is "", never null); typed mode casts per the data contract.

Rows are numbered as people count lines in a spreadsheet: the header is row 1; fully empty
lines are skipped and not counted.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol, cast

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from zstandard import ZstdError

from tasks.convert import chunker, dialect
from tasks.convert.compression import open_decompressed
from tasks.errors import MalformedContent
from tasks.formats import Compression, OutputFormat
from tasks.settings import DecompressionLimits

Sink = Callable[[bytes], object]

CHUNK_BYTES = 4 * 1024 * 1024
"""Input bytes per chunk: with two workers and two chunks queued, memory stays ~10x this."""
WORKERS = 2
BOM = codecs.BOM_UTF8
SINK_BUFFER_BYTES = 1 << 20
"""Parquet bytes buffered natively before each call into the (Python) sink."""
_FIELD_LIMIT = 2**31 - 1
"""For the precise path's csv module: no limit of its own (records are bounded by the chunker)."""


@dataclass(frozen=True)
class EngineOptions:
    outputs: tuple[OutputFormat, ...] = ("jsonl",)
    delimiter: str | None = None  # None: sniffed from the header line
    quote: str = '"'
    compression: Compression | None = None  # None: from the magic bytes
    chunk_bytes: int = CHUNK_BYTES
    workers: int = WORKERS
    parquet_compression: str = "zstd"
    max_record_bytes: int = chunker.MAX_RECORD_BYTES
    # Typed mode: a callable that turns one text chunk into (typed frame, rejected rows frame or
    # None), raising a PermanentError when the file must be rejected. None: text mode.
    typing: ChunkTyping | None = None
    # How far compressed content may expand (None: no limits).
    limits: DecompressionLimits | None = None

    def __post_init__(self) -> None:
        # A read of 0 bytes means the end of the stream: the rest would be silently dropped.
        if self.chunk_bytes < 1 or self.workers < 1 or self.max_record_bytes < 1:
            raise ValueError("chunk_bytes, workers and max_record_bytes must be at least 1")


@dataclass
class EngineResult:
    rows: int = 0  # rows written
    rejected_rows: int = 0
    columns: list[str] = field(default_factory=list)
    delimiter: str = ","
    compression: Compression = "none"


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


class _RowError(Exception):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index  # record index within the chunk
        self.message = message


@dataclass
class _Parsed:
    frame: pl.DataFrame
    jsonl: bytes | None = None
    error: _RowError | None = None


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
    except pl.exceptions.PanicException as exc:
        # A native library gave up on the content (a Rust panic is a BaseException: it would
        # otherwise end the worker process with no report). The content is what it choked on.
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
    try:
        header_bytes, rest = chunker.first_record(stream, quote=options.quote.encode())
    except (chunker.UnterminatedQuote, OSError, EOFError, ZstdError) as exc:
        error = _content_error(exc, "the header")
        if error is exc:  # e.g. a network error: keeps its type for the caller to classify
            raise
        raise error from exc
    if header_bytes.startswith(BOM):
        header_bytes = header_bytes[len(BOM) :]
    if not header_bytes.strip():
        raise MalformedContent("no header: the file has no content")
    delimiter = options.delimiter or dialect.sniff(header_bytes, quote=options.quote.encode())
    header = _parse_header(header_bytes, delimiter, options.quote)
    result = EngineResult(columns=header, delimiter=delimiter, compression=compression)
    schema = (
        options.typing.start(header)
        if options.typing
        else pa.schema([pa.field(name, pa.large_string()) for name in header])
    )
    writers = _Writers(options.outputs, sinks, schema, options.parquet_compression, header)
    parse = _Parser(
        header,
        delimiter,
        options.quote,
        want_jsonl="jsonl" in options.outputs and not options.typing,
    )
    try:
        _convert_chunks(rest, stream, options, parse, writers, result, rejected_sink)
    except BaseException:
        writers.discard()
        raise
    writers.close()
    return result


def _convert_chunks(
    rest: bytes,
    stream: BinaryIO,
    options: EngineOptions,
    parse: _Parser,
    writers: _Writers,
    result: EngineResult,
    rejected_sink: Sink | None,
) -> None:
    # Three stages: this thread reads and cuts chunks; the parse pool parses them (polars uses
    # every core inside each call); one writer thread types and encodes them in file order.
    with (
        ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="parse") as pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="write") as writer,
    ):
        pending: deque[Future[None]] = deque()
        chunks = _chunks(
            rest, stream, options.chunk_bytes, options.quote.encode(), options.max_record_bytes
        )
        state = _WriteState()

        def consume(parsed_future: Future[_Parsed]) -> None:
            if state.failed:
                return  # an earlier chunk failed: write nothing more
            try:
                _consume(parsed_future.result(), state, options, writers, result, rejected_sink)
            except BaseException:
                state.failed = True
                raise

        def wait_oldest() -> None:
            pending.popleft().result()

        try:
            for chunk in chunks:
                parsed = pool.submit(parse, chunk)
                pending.append(writer.submit(consume, parsed))
                if len(pending) > options.workers:
                    wait_oldest()
        except (chunker.UnterminatedQuote, chunker.RecordTooLong) as exc:
            while pending:  # a bad row before it is reported first
                wait_oldest()
            # The record at fault is the one after every row read (see chunker.records).
            raise MalformedContent(f"row {state.data_rows + 2}: cannot parse: {exc}") from exc
        except BaseException:
            state.failed = True
            raise
        finally:
            if state.failed:
                for future in pending:
                    future.cancel()
        while pending:
            wait_oldest()


@dataclass
class _WriteState:
    data_rows: int = 0  # data rows read before the chunk being written
    failed: bool = False


def _consume(
    parsed: _Parsed,
    state: _WriteState,
    options: EngineOptions,
    writers: _Writers,
    result: EngineResult,
    rejected_sink: Sink | None,
) -> None:
    """The writer stage, for one chunk, in file order."""
    if parsed.error is not None:
        row = state.data_rows + parsed.error.index + 2
        raise MalformedContent(f"row {row}: {parsed.error.message}")
    frame, jsonl = parsed.frame, parsed.jsonl
    if options.typing:
        frame, rejected = options.typing.apply(frame, state.data_rows + 2)
        if rejected is not None and rejected.height:
            result.rejected_rows += rejected.height
            if rejected_sink is not None:
                rejected_sink(_ndjson(rejected))
    state.data_rows += parsed.frame.height
    writers.write(frame, jsonl)
    result.rows += frame.height


def _chunks(
    rest: bytes, stream: BinaryIO, size: int, quote: bytes, max_record: int
) -> Iterator[bytes]:
    source = cast(BinaryIO, _Prefixed(rest, stream))
    try:
        yield from chunker.records(source, size, quote, max_record=max_record)
    except (OSError, EOFError, ZstdError) as exc:
        error = _content_error(exc, "the data")
        if error is exc:  # e.g. a network error: keeps its type for the caller to classify
            raise
        raise error from exc


def _content_error(exc: BaseException, where: str) -> Exception:
    """Decompression failures are bad files; other OSErrors (network) keep their type."""
    name = type(exc).__name__
    if name in {"BadGzipFile", "ZstdError", "error"} or isinstance(exc, EOFError):
        return MalformedContent(f"corrupt or truncated compressed data in {where}: {exc}")
    if isinstance(exc, OSError) and "Invalid data stream" in str(exc):  # bz2
        return MalformedContent(f"corrupt compressed data in {where}: {exc}")
    if isinstance(exc, chunker.UnterminatedQuote):
        return MalformedContent(f"cannot parse {where}: {exc}")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


class _Prefixed(io.RawIOBase):
    """The bytes already read past the header, then the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        if self._head:
            if 0 <= size <= len(self._head):  # at most ``size`` bytes, as a read must return
                head, self._head = self._head[:size], self._head[size:]
                return head
            head, self._head = self._head, b""
            return head + self._rest.read(size - len(head) if size > 0 else -1)
        return self._rest.read(size)


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


class _Parser:
    """Parses one chunk of whole records into a frame of text columns (a worker's job)."""

    def __init__(self, header: list[str], delimiter: str, quote: str, *, want_jsonl: bool) -> None:
        self.header = header
        self.delimiter = delimiter
        self.quote = quote
        self.want_jsonl = want_jsonl
        self.schema = dict.fromkeys(header, pl.String)

    def __call__(self, chunk: bytes) -> _Parsed:
        frame = self._fast(chunk)
        if frame is None:
            try:
                frame = self._precise(chunk)
            except _RowError as error:
                return _Parsed(pl.DataFrame(schema=self.schema), error=error)
        jsonl = _ndjson(frame) if self.want_jsonl else None
        return _Parsed(frame, jsonl)

    def _fast(self, chunk: bytes) -> pl.DataFrame | None:
        try:
            frame = pl.read_csv(
                chunk,
                has_header=False,
                new_columns=self.header,
                schema=self.schema,
                separator=self.delimiter,
                quote_char=self.quote,
                infer_schema=False,
                empty_string_is_null=False,
                missing_columns="insert",
            )
        except Exception:  # polars reports bad rows only by byte offset: go find the row
            return None
        if frame.width != len(self.header) or frame.null_count().sum_horizontal()[0]:
            return None
        # Where polars and the precise path would disagree, the precise path decides (so the
        # result never depends on how the file was cut into chunks): a CR that doesn't end a
        # line (polars keeps it as data), and in a one-column file the empty values (a blank
        # line, skipped, reads like an empty field).
        if chunk.count(b"\r") != chunk.count(b"\r\n"):
            return None
        if frame.width == 1 and frame.height and (frame.get_column(self.header[0]) == "").any():
            return None
        # Ragged rows and blank lines: polars pads short rows; the delimiters outside quoted
        # values must be exactly rows x (columns - 1).
        outside = chunk.count(self.delimiter.encode()) - sum(
            frame.select(
                pl.col(name).str.count_matches(self.delimiter, literal=True).sum()
                for name in self.header
            ).row(0)
        )
        if outside != frame.height * (len(self.header) - 1):
            return None
        return frame

    def _precise(self, chunk: bytes) -> pl.DataFrame:
        text = chunk.decode("utf-8", errors="surrogateescape")
        if csv.field_size_limit() < _FIELD_LIMIT:  # the stdlib default (128 KiB) is too small
            csv.field_size_limit(_FIELD_LIMIT)  # process-wide; one value, so threads agree
        reader = csv.reader(
            io.StringIO(text, newline="\n"),  # lines end at LF only, as for the chunker
            delimiter=self.delimiter,
            quotechar=self.quote,
            strict=True,
        )
        width = len(self.header)
        rows: list[list[str]] = []
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                message = str(exc)
                if message.startswith("new-line character seen in unquoted field"):
                    message = "a carriage return (CR) outside quotes"
                raise _RowError(len(rows), f"cannot parse: {message}") from exc
            if not record:
                continue  # a blank line (a line holding "" is one empty field)
            if len(record) != width:
                raise _RowError(
                    len(rows), f"expected {width} fields as in the header, found {len(record)}"
                )
            for value in record:
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise _RowError(len(rows), "not valid UTF-8") from None
            rows.append(record)
        return pl.DataFrame(rows, schema=self.schema, orient="row")


def _nowhere(data: bytes) -> None:
    pass


def _ndjson(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ndjson(buffer)
    return buffer.getvalue()


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


def _native_buffered(file: _SinkFile) -> pa.NativeFile:
    """pyarrow writing to a Python file takes the GIL for every page, and the other stages hold
    it often: a native 1 MiB buffer in front calls into Python once per MiB instead."""
    return pa.BufferedOutputStream(pa.PythonFile(file, mode="w"), buffer_size=SINK_BUFFER_BYTES)


class _Writers:
    def __init__(
        self,
        outputs: tuple[OutputFormat, ...],
        sinks: Mapping[OutputFormat, Sink],
        schema: pa.Schema | None,
        parquet_compression: str,
        header: list[str],
    ) -> None:
        """``schema`` None: taken from the first frame written (inferred types)."""
        self._outputs = outputs
        self._sinks = sinks
        self._compression = parquet_compression
        self._parquet: pq.ParquetWriter | None = None
        self._schema = schema
        self._fallback = pa.schema([pa.field(name, pa.large_string()) for name in header])
        if "parquet" in outputs:
            self._file = _SinkFile(sinks["parquet"])
            self._stream = _native_buffered(self._file)
            if schema is not None:
                self._open(schema)

    def _open(self, schema: pa.Schema) -> pq.ParquetWriter:
        self._schema = schema
        self._parquet = pq.ParquetWriter(
            self._stream,
            schema,
            compression=self._compression,
            use_dictionary=False,
            write_statistics=False,
        )
        return self._parquet

    def write(self, frame: pl.DataFrame, jsonl: bytes | None) -> None:
        if not frame.height:
            return
        if "jsonl" in self._outputs:
            self._sinks["jsonl"](jsonl if jsonl is not None else _ndjson(frame))
        if "parquet" in self._outputs:
            table = frame.to_arrow()  # polars' strings arrive as large_string: no copy
            writer = self._parquet or self._open(table.schema)
            if table.schema != self._schema:
                table = table.cast(self._schema)
            writer.write_table(table)

    def close(self) -> None:
        if "parquet" in self._outputs:
            writer = self._parquet or self._open(self._schema or self._fallback)
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
