"""One large file converted as many parts at once, published as one file's outputs.

    plan    cut the source into record-aligned byte ranges (tasks.fanout.cuts): the state under
            the fan-out prefix, round 0's items in a manifest beside it (a JSON array the
            Distributed Map reads with its ItemReader: the state payload carries no items)
    parts   each part converted on its own (tasks.fanout.part), types inferred from its values
    commit  decide for the whole file, in file order:
            - a part that ended inside a quoted field: its cut was a wrong guess; it and the next
              part are converted again as one (another round)
            - a part whose content is bad: the file is bad; the row is made file-global (the
              records of the parts before it added) and its error raised (quarantine)
            - a data contract: its error policy applied once to the parts' counts
              (tasks.fanout.contract_parts)
            - types: the whole file's are the AND of the parts' type masks; parts whose types
              differ are converted again with the whole file's (another round)
            - otherwise each output is joined server-side from the parts' objects (JSON Lines:
              the bytes one after the other; Parquet: tasks.fanout.parquet_parts) and the set
              published under the fence (newest version wins), as a whole file's would be
            the verdict (result or error) is kept beside the state, the rest removed: a retried
            commit whose answer was lost answers the same
    abandon the fan-out's objects removed (a failed or stopped fan-out leaves nothing)

Rows are counted as in a whole file (the header is row 1), so errors name the file's row.
A zstd file is cut between its frames (tasks.fanout.frames); one that can't be gets no parts,
and the state machine converts it in one sized Batch job, as it does gzip and bz2 files (they
can only be read from their start).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any, Protocol

import chute_native

from tasks import log
from tasks.convert.domain import CONTENT_TYPES, Writer, publish_outputs, replaced_file
from tasks.data_contracts.model import Contract
from tasks.errors import (
    MalformedContent,
    PermanentError,
    Replaced,
    StaleEventError,
    StorageUnavailable,
    concrete_errors,
)
from tasks.fanout import contract_parts, cuts, frames, parquet_parts, zstd_parts
from tasks.fanout.part import REJECTED
from tasks.fence import Stamp
from tasks.formats import keys
from tasks.models import Head, ObjectRef, Output, Plan, Target
from tasks.multipart_layout import Part as Layout
from tasks.multipart_layout import Piece, layout
from tasks.names import DEFAULT_PART_SIZE_BYTES

HEADER_WINDOW = 1 << 20
UNBOUNDED = 1 << 62
"""The end a frame's window is read to: a frame's end is not the file's (records go on)."""
ROW = re.compile(r"^row (\d+)")


class Store(Protocol):
    def read_range(self, ref: ObjectRef, start: int, end: int) -> bytes: ...

    def put_json(self, bucket: str, key: str, document: Any) -> None: ...

    def get_json(self, bucket: str, key: str) -> Any | None: ...

    def exists(self, bucket: str, key: str) -> Head | None: ...

    def assemble(
        self,
        bucket: str,
        key: str,
        parts: list[Layout],
        *,
        content_type: str,
        metadata: dict[str, str],
    ) -> Any: ...

    def delete_prefix(self, bucket: str, prefix: str, *, keep: frozenset[str] = ...) -> int: ...

    def delete_stamped(self, bucket: str, key: str, condition: Any) -> None: ...

    def writer(
        self,
        bucket: str,
        key: str,
        *,
        part_size: int,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> Writer: ...


@dataclass(frozen=True)
class FanOut:
    """What the workflow carries between the fan-out's steps."""

    bucket: str
    execution: str
    data_start: int
    round: int
    parts: int
    """Parts to convert in this round (the Map's items)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "execution": self.execution,
            "dataStart": self.data_start,
            "round": self.round,
            "parts": self.parts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FanOut:
        return cls(
            bucket=str(data["bucket"]),
            execution=str(data["execution"]),
            data_start=int(data["dataStart"]),
            round=int(data["round"]),
            parts=int(data["parts"]),
        )


def plan_parts(
    plan: Plan, store: Store, execution: str, part_bytes: int, contract: Contract | None = None
) -> dict[str, Any]:
    """Cut the file; leave the state and round 0's manifest (the parts to convert: ``{index,
    start, end, round, types}``, and ``skip``, ``take``, ``stop`` for a zstd file cut between
    its frames); the fan-out to carry on, with its ``manifest``'s key. A zstd file that can't
    be cut between frames (tasks.fanout.frames) gets no parts (``parts`` 0, ``manifest``
    None): the workflow converts it as one file. ``contract``: the file's data contract (its
    quote character)."""
    ref = plan.file.ref
    size = ref.size or 0
    delimiter = plan.file.delimiter or ","
    quote = contract.dialect.quote if contract is not None else '"'

    def read(start: int, end: int) -> bytes:
        return store.read_range(ref, start, end)

    framed = plan.file.compression == "zstd"
    first = zstd_parts.head(read, size, HEADER_WINDOW) if framed else None
    head = first.data if first is not None else read(0, min(size, HEADER_WINDOW))
    data_start, columns = _header(head, delimiter, quote)
    dialect = cuts.Dialect(delimiter.encode(), quote.encode(), columns)
    if first is None:
        parts = cuts.plan(size, data_start, part_bytes, read, dialect)
    else:
        try:
            parts = _frame_parts(first, size, data_start, part_bytes, read, dialect)
        except frames.NotSplittable as why:
            log.info("fan-out not possible", reason=str(why), size=size)
            unsplit = FanOut(plan.target.bucket, execution, data_start, 0, 0)
            return {**unsplit.to_dict(), "manifest": None}
    items = [{**p.to_dict(), "round": 0, "types": None} for p in parts]
    fanout = FanOut(plan.target.bucket, execution, data_start, 0, len(items))
    log.info("fan-out planned", parts=len(items), part_bytes=part_bytes, size=size)
    return _start_round(store, fanout, items, items)


def _frame_parts(
    first: zstd_parts.Head,
    size: int,
    data_start: int,
    part_bytes: int,
    read: cuts.Read,
    dialect: cuts.Dialect,
) -> list[cuts.Part]:
    """A zstd file's parts, cut at a record boundary in a frame near each part's share."""
    found = frames.find_frames(size, read, max_frame=part_bytes)

    def cut_in(frame: frames.Frame) -> int | None:
        window = zstd_parts.FrameWindow(read, frame)
        return cuts.find_cut(0, UNBOUNDED, window, dialect, max_window=cuts.MAX_WINDOW)

    header_frame = zstd_parts.frame_of(read, found, data_start)
    parts = frames.plan(found, size, data_start, header_frame, part_bytes, first.ratio, cut_in)
    if len(parts) < 2:
        raise frames.NotSplittable("no record boundary found in its frames")
    return parts


def _header(head: bytes, delimiter: str, quote: str) -> tuple[int, int]:
    """Where the header record ends, and how many fields it has."""
    inside = False
    for i, byte in enumerate(head):
        if byte == ord(quote):
            inside = not inside
        elif byte == 0x0A and not inside:
            text = head[: i + 1].decode("utf-8-sig", errors="replace")
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quote)
            fields = next(reader)
            return i + 1, len(fields)
    raise MalformedContent("header (row 1): no end of the header in the first MiB")


def _start_round(
    store: Store, fanout: FanOut, state: list[dict[str, Any]], todo: list[dict[str, Any]]
) -> dict[str, Any]:
    """Leave the fan-out's parts (each with the round that holds its result) and the round's
    manifest (``todo``: the Map's items); what the workflow carries on with."""
    state_key = keys.fanout_key(fanout.execution, "state.json")
    store.put_json(fanout.bucket, state_key, {"parts": state})
    manifest = keys.fanout_manifest_key(fanout.execution, fanout.round)
    store.put_json(fanout.bucket, manifest, todo)
    return {**fanout.to_dict(), "manifest": manifest}


def commit(
    plan: Plan, store: Store, fanout: FanOut, contract: Contract | None = None
) -> dict[str, Any]:
    """Decide for the whole file (see the module's docstring). Returns ``{"again": FanOut with
    the round's manifest}`` for another round, or ``{"output": Output}`` once published. The
    fan-out's objects are removed once it is over: published, or the file rejected,
    superseded or replaced (a transient error keeps them for the retry).

    Idempotent: the verdict (the result, or the error that ended the file) is kept beside the
    state (keys.FANOUT_OUTCOME) before the rest is removed, so a retry whose answer was lost —
    the outputs published, the parts gone — answers the same instead of failing."""
    kept = store.get_json(fanout.bucket, _outcome_key(fanout))
    if isinstance(kept, dict):
        log.info("fan-out already committed: its verdict again")
        _clean_up(store, fanout)  # it may have stopped between the verdict and the clean-up
        return _verdict(kept)
    try:
        result = _commit(plan, store, fanout, contract)
    except (PermanentError, StaleEventError, Replaced) as exc:
        _over(store, fanout, {"error": type(exc).__name__, "message": str(exc)})
        raise
    if "output" in result:
        _over(store, fanout, {"result": result})
    return result


def _outcome_key(fanout: FanOut) -> str:
    return keys.fanout_key(fanout.execution, keys.FANOUT_OUTCOME)


def _over(store: Store, fanout: FanOut, verdict: dict[str, Any]) -> None:
    """Keep the verdict, then remove everything else of the fan-out."""
    store.put_json(fanout.bucket, _outcome_key(fanout), verdict)
    _clean_up(store, fanout)


def _clean_up(store: Store, fanout: FanOut) -> None:
    prefix = keys.fanout_key(fanout.execution, "")
    store.delete_prefix(fanout.bucket, prefix, keep=frozenset({_outcome_key(fanout)}))


_ERRORS = {error.__name__: error for error in concrete_errors()}


def _verdict(kept: dict[str, Any]) -> dict[str, Any]:
    """A kept verdict: the result again, or the error raised again."""
    if "result" in kept:
        result: dict[str, Any] = kept["result"]
        return result
    error = _ERRORS.get(str(kept.get("error")))
    if error is None:
        raise StorageUnavailable(f"fan-out verdict unreadable: {kept!r}")
    raise error(str(kept.get("message", "")))


def _commit(plan: Plan, store: Store, fanout: FanOut, contract: Contract | None) -> dict[str, Any]:
    state = store.get_json(fanout.bucket, keys.fanout_key(fanout.execution, "state.json"))
    if not isinstance(state, dict):
        raise StorageUnavailable(f"fan-out {fanout.execution}: its state is missing")
    items: list[dict[str, Any]] = state["parts"]
    found = [_found(store, fanout, item) for item in items]
    again = _cut_again(items, found, contract) or _types_again(items, found)
    if again is not None:
        state_items, todo = again
        next_round = FanOut(
            fanout.bucket, fanout.execution, fanout.data_start, fanout.round + 1, len(todo)
        )
        for item in todo:
            item["round"] = next_round.round
        log.info("fan-out converts parts again", round=next_round.round, parts=len(todo))
        return {"again": _start_round(store, next_round, state_items, todo)}
    if contract is not None:
        contract_parts.check(contract, found)  # the file's error budget, decided once
    output = _publish(plan, store, fanout, items, found)
    return {"output": output.to_dict(), "parts": len(items)}


def _found(store: Store, fanout: FanOut, item: dict[str, Any]) -> dict[str, Any]:
    key = keys.fanout_part_key(fanout.execution, int(item["round"]), int(item["index"]), "json")
    found = store.get_json(fanout.bucket, key)
    if not isinstance(found, dict):
        raise StorageUnavailable(f"fan-out {fanout.execution}: part {item['index']} left no result")
    return found


def _cut_again(
    items: list[dict[str, Any]], found: list[dict[str, Any]], contract: Contract | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """The first part in error: a wrong cut joins it to the next (another round); bad content
    fails the file, its row counted from the file's start — unless the contract failed the
    file in the parts before it (a single worker, reading in order, would have stopped there)."""
    rows_before = 0
    for i, result in enumerate(found):
        error = result.get("error")
        if error is None:
            rows_before += contract_parts.records(result)
            continue
        if error.get("endsInQuotes") and i < len(items) - 1:
            parts = cuts.merge_after([cuts.Part.from_dict(p) for p in items], i)
            rounds = {int(item["index"]): item["round"] for item in items}
            merged = [{**p.to_dict(), "round": rounds[p.index], "types": None} for p in parts]
            return merged, [merged[i]]
        if contract is not None:
            contract_parts.check(contract, found[:i])
        kind = _ERRORS.get(str(error.get("type")), MalformedContent)
        raise kind(_file_row(str(error["message"]), rows_before))
    return None


def _file_row(message: str, rows_before: int) -> str:
    """The part's message with its row numbered from the file's start."""
    return ROW.sub(lambda m: f"row {int(m.group(1)) + rows_before}", message, count=1)


def _kind(mask: int) -> str | None:
    return chute_native.kind_of(mask)


def _types_again(
    items: list[dict[str, Any]], found: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """Parts whose types differ from the whole file's, to convert again with the file's."""
    if any(f.get("masks") is None for f in found):
        return None  # text mode: nothing to decide
    whole = _whole_masks(found)
    assert whole is not None
    kinds = [_kind(m) for m in whole]
    types = [k or "string" for k in kinds]
    todo = []
    for item, f in zip(items, found, strict=True):
        if [_kind(m) for m in f["masks"]] != kinds:
            item["types"] = types
            todo.append(item)
    return (items, todo) if todo else None


def _publish(
    plan: Plan,
    store: Store,
    fanout: FanOut,
    items: list[dict[str, Any]],
    found: list[dict[str, Any]],
) -> Output:
    source, target = plan.file.ref, plan.target
    stamp = Stamp.of(source)
    pending: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    try:
        for output_format in target.formats:
            parts, sizes[output_format] = _layout(store, fanout, items, found, output_format)
            pending[target.object_key(output_format)] = store.assemble(
                target.bucket,
                target.object_key(output_format),
                parts,
                content_type=CONTENT_TYPES[output_format],
                metadata=stamp.metadata(),
            )
        rejected_rows = sum(int((f.get("rejected") or {}).get("rows", 0)) for f in found)
        if rejected_rows:
            pending[target.rejected_key] = _rejected(store, fanout, items, found, stamp, target)
        replaced = publish_outputs(store, source, stamp, target, pending)  # type: ignore[arg-type]
    except BaseException:
        for copy in pending.values():
            copy.abort()
        raise
    whole = _whole_masks(found)
    return Output(
        bucket=target.bucket,
        keys={f: target.object_key(f) for f in target.formats},
        rows=sum(int(f["rows"]) for f in found),
        rejected_rows=rejected_rows,
        rejected_key=target.rejected_key if rejected_rows else None,
        bytes=sizes,
        replaced=tuple(replaced_file(other, source) for other in replaced),
        schema=(
            dict(zip(found[0]["columns"], [_kind(m) or "string" for m in whole], strict=True))
            if whole is not None
            else None
        ),
    )


def _rejected(
    store: Store,
    fanout: FanOut,
    items: list[dict[str, Any]],
    found: list[dict[str, Any]],
    stamp: Stamp,
    target: Target,
) -> Writer:
    """The file's rejected rows: the parts', in order, each ``_row`` made file-global; written
    (not copied: the row numbers change) and invisible until published."""
    writer = store.writer(
        fanout.bucket,
        target.rejected_key,
        part_size=DEFAULT_PART_SIZE_BYTES,
        content_type=CONTENT_TYPES["jsonl"],
        metadata=stamp.metadata(),
    )
    parts, before = [], 0
    for item, f in zip(items, found, strict=True):
        size = int((f.get("rejected") or {}).get("bytes", 0))
        if size:
            key = keys.fanout_part_key(
                fanout.execution, int(item["round"]), int(item["index"]), REJECTED
            )
            parts.append((key, size, before))
        before += contract_parts.records(f)

    def read(key: str, start: int, end: int) -> bytes:
        return store.read_range(ObjectRef(fanout.bucket, key, size=end), start, end)

    try:
        contract_parts.join_rejected(parts, read, writer.write)
    except BaseException:
        writer.abort()
        raise
    return writer


def _part_file(store: Store, bucket: str, key: str, size: int) -> parquet_parts.PartFile:
    ref = ObjectRef(bucket, key, size=size)

    def read(start: int, end: int) -> bytes:
        return store.read_range(ref, start, end)

    return parquet_parts.PartFile.read(size, read, f"s3://{bucket}/{key}")


def _whole_masks(found: list[dict[str, Any]]) -> list[int] | None:
    """The whole file's type masks: every part's ANDed (None in text mode)."""
    if any(f.get("masks") is None for f in found):
        return None
    whole = list(found[0]["masks"])
    for f in found[1:]:
        whole = [a & b for a, b in zip(whole, f["masks"], strict=True)]
    return whole


def _layout(
    store: Store, fanout: FanOut, items: list[dict[str, Any]], found: list[dict[str, Any]], fmt: str
) -> tuple[list[Layout], int]:
    """The multipart parts that join the parts' ``fmt`` objects into one, and its size."""
    objects = [
        (
            keys.fanout_part_key(fanout.execution, int(i["round"]), int(i["index"]), fmt),
            int(f["bytes"][fmt]),
        )
        for i, f in zip(items, found, strict=True)
    ]
    tail = b""
    if fmt == "parquet":
        files = [_part_file(store, fanout.bucket, key, size) for key, size in objects]
        ranges, tail = parquet_parts.layout(files)
        pieces = [Piece(key, a, b) for (key, _), (a, b) in zip(objects, ranges, strict=True)]
    else:
        pieces = [Piece(key, 0, size) for key, size in objects]
    return layout(pieces, tail), sum(p.size for p in pieces) + len(tail)


def abandon(store: Store, fanout: FanOut) -> int:
    """Remove everything the fan-out wrote (its parts are never visible as outputs)."""
    deleted = store.delete_prefix(fanout.bucket, keys.fanout_key(fanout.execution, ""))
    log.info("fan-out abandoned", deleted=deleted)
    return deleted
