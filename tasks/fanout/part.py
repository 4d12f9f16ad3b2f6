"""Converting one part of a fanned-out file: the header, then the part's byte range, through the
same engine as a whole file, into the part's own objects (invisible to readers: under the
fan-out prefix). What it found — rows, each column's type mask, or the error — is left beside
them for the commit (tasks.fanout.domain), which decides for the whole file."""

from __future__ import annotations

import io
from contextlib import closing
from dataclasses import replace
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from tasks import log
from tasks.convert.domain import CONTENT_TYPES, Writer, engine_options
from tasks.convert.domain import Store as ConversionStore
from tasks.convert.engine import EngineOptions, EngineResult, convert_restarting, convert_stream
from tasks.convert.typed import ContractTyping
from tasks.data_contracts.model import ContractSet
from tasks.errors import PermanentError
from tasks.fanout import zstd_parts
from tasks.fanout.cuts import Part
from tasks.formats import OutputFormat, keys
from tasks.models import ObjectRef, Plan
from tasks.settings import ConvertSettings

if TYPE_CHECKING:
    from typing_extensions import Buffer

ENDS_IN_QUOTES = ("ends inside a quoted field", "unexpected end of data")
"""The engine's words for input that ends inside a quoted field (the splitter's and the
parser's): in a part that is not the file's last, its cut was a wrong guess (tasks.fanout.cuts);
tests/unit/test_fanout.py holds them to what the engine says."""
REJECTED = "rejected.jsonl"
"""A part's rejected rows: its object's suffix (tasks.formats.keys.fanout_part_key)."""
UNLIMITED = 1 << 62
"""A part's budget of rejected rows: every bad row (the commit applies the file's budget)."""


class Store(ConversionStore, Protocol):
    """A conversion's store (tasks.convert.domain), plus byte ranges and JSON documents."""

    def read_range(self, ref: ObjectRef, start: int, end: int) -> bytes: ...

    def open_range(self, ref: ObjectRef, start: int, end: int) -> BinaryIO: ...

    def put_json(self, bucket: str, key: str, document: Any) -> None: ...


class _Chain(io.RawIOBase):
    """The header's bytes, then the part's stream."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(target), len(self._head))
            target[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(target))
        target[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._rest.close()
        super().close()


def _header(store: Store, source: ObjectRef, data_start: int, framed: bool) -> bytes:
    """The file's header record (and anything before it: a byte order mark)."""
    if not framed:
        return store.read_range(source, 0, data_start)

    def read(start: int, end: int) -> bytes:
        return store.read_range(source, start, end)

    return zstd_parts.head(read, source.size or 0, data_start).data


def part_options(
    plan: Plan, contracts: ContractSet | None, settings: ConvertSettings, types: Any
) -> EngineOptions:
    """How the engine reads a part: the part's bytes are plain text (a zstd part is
    decompressed before the engine); types inferred, given (``types``), or a contract's — whose
    error budget is the whole file's, so a part drops every bad row and counts it (the commit
    applies the policy: tasks.fanout.domain)."""
    options = replace(engine_options(plan, contracts, settings.decompression), compression="none")
    if options.typing is not None:
        contract = options.typing.contract
        every_row = replace(contract.on_error, policy="drop_rows", max_rejected_rows=UNLIMITED)
        return replace(options, typing=ContractTyping(replace(contract, on_error=every_row)))
    return replace(
        options,
        infer=types is None and plan.target.infer,
        types=tuple(types) if types is not None else None,
    )


def convert_part(
    plan: Plan,
    store: Store,
    settings: ConvertSettings,
    execution: str,
    data_start: int,
    item: dict[str, Any],
    contracts: ContractSet | None = None,
) -> dict[str, Any]:
    """Convert the part ``item`` (``{index, start, end, round, types}``; ``types`` None: infer
    them) and leave what it found at its ``json`` key; returns ``{index, round, rows}``."""
    part = Part.from_dict(item)
    round_ = int(item.get("round", 0))
    source, target = plan.file.ref, plan.target
    options = part_options(plan, contracts, settings, item.get("types"))
    framed = plan.file.compression == "zstd"  # cut between frames: tasks.fanout.frames
    header = _header(store, source, data_start, framed)
    writers: dict[OutputFormat, Writer] = {}
    rejected = _Rejected(store, target.bucket, execution, round_, part.index, settings)

    def open_part() -> BinaryIO:
        if not framed:
            return store.open_range(source, part.start, part.end)

        def open_range(start: int, end: int) -> BinaryIO:
            return store.open_range(source, start, end)

        return zstd_parts.part_stream(open_range, part, settings.decompression)

    def attempt(options: EngineOptions) -> EngineResult:
        for output_format in target.formats:
            writers[output_format] = store.writer(
                target.bucket,
                keys.fanout_part_key(execution, round_, part.index, output_format),
                part_size=settings.part_size_bytes,
                content_type=CONTENT_TYPES[output_format],
            )
        try:
            stream = _Chain(header, open_part())
            with closing(stream):
                sinks = {f: w.write for f, w in writers.items()}
                return convert_stream(
                    cast(BinaryIO, stream), options, sinks, rejected_sink=rejected.write
                )
        except BaseException:
            for writer in writers.values():
                writer.abort()
            rejected.abort()
            raise

    found: dict[str, Any] = {"index": part.index, "round": round_, "start": part.start}
    try:
        result = convert_restarting(attempt, options)
        for writer in writers.values():
            writer.complete()
        rejected.complete()
        found |= {
            "rows": result.rows,
            "columns": result.columns,
            "masks": list(result.masks) if result.masks is not None else None,
            "bytes": {f: w.bytes_written for f, w in writers.items()},
            "rejected": {"rows": result.rejected_rows, "bytes": rejected.bytes_written},
            "problemCount": result.problem_count,
            "problems": [p.to_dict() for p in result.problems],
        }
    except PermanentError as exc:  # the commit decides what it means for the file
        message = str(exc)
        found["error"] = {
            "type": type(exc).__name__,
            "message": message,
            "endsInQuotes": any(w in message for w in ENDS_IN_QUOTES),
        }
    store.put_json(
        target.bucket, keys.fanout_part_key(execution, round_, part.index, "json"), found
    )
    log.info("part converted", part=part.index, round=round_, rows=found.get("rows"))
    return {"index": part.index, "round": round_, "rows": found.get("rows")}


class _Rejected:
    """The part's rejected rows (a contract's): an object under the fan-out prefix, written only
    once there are any."""

    def __init__(
        self,
        store: Store,
        bucket: str,
        execution: str,
        round_: int,
        index: int,
        settings: ConvertSettings,
    ) -> None:
        self._store = store
        self._bucket = bucket
        self._key = keys.fanout_part_key(execution, round_, index, REJECTED)
        self._part_size = settings.part_size_bytes
        self._writer: Writer | None = None

    @property
    def bytes_written(self) -> int:
        return self._writer.bytes_written if self._writer is not None else 0

    def write(self, data: Buffer) -> None:
        if self._writer is None:
            self._writer = self._store.writer(
                self._bucket,
                self._key,
                part_size=self._part_size,
                content_type=CONTENT_TYPES["jsonl"],
            )
        self._writer.write(data)

    def complete(self) -> None:
        if self._writer is not None:
            self._writer.complete()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
