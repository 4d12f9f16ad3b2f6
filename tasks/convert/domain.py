"""Convert one planned file: stream it from staging, write every target format to the output
bucket (and the rows a contract drops to ``<key>.rejected.jsonl``).

Shared by the Lambda handler and the Batch container. Each output is a multipart upload that is
aborted if anything fails, so a failed conversion leaves no object behind; outputs are
published by :mod:`tasks.fence` (newest version wins).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from typing import TYPE_CHECKING, BinaryIO, Protocol

from tasks import fence, log
from tasks.convert.engine import (
    EngineOptions,
    EngineResult,
    Widened,
    convert_restarting,
    convert_stream,
)
from tasks.convert.typed import ContractTyping
from tasks.convert.writes import Sink
from tasks.data_contracts.model import ContractSet
from tasks.errors import SourceMissing, Superseded
from tasks.fence import Condition, Stamp
from tasks.formats import OutputFormat
from tasks.models import ObjectRef, Output, Plan, Target
from tasks.settings import ConvertSettings, DecompressionLimits

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from tasks.models import Head


class Writer(Protocol):
    """An object written part by part, invisible until completed."""

    bytes_written: int

    def write(self, data: Buffer) -> None: ...

    def complete(self, condition: Condition | None = None) -> None: ...

    def abort(self) -> None: ...


class Store(Protocol):
    """What the conversion needs of S3 (tasks.adapters.s3.S3Store; errors already translated to
    the workflow's error contract, reads of the stream included)."""

    def open_stream(self, ref: ObjectRef) -> BinaryIO: ...

    def writer(
        self,
        bucket: str,
        key: str,
        *,
        part_size: int,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> Writer: ...

    def exists(self, bucket: str, key: str) -> Head | None: ...

    def delete_stamped(self, bucket: str, key: str, condition: Condition) -> None: ...


CONTENT_TYPES: dict[str, str] = {
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


def engine_options(
    plan: Plan, contracts: ContractSet | None, limits: DecompressionLimits | None = None
) -> EngineOptions:
    """How the engine must read and type this file (within ``limits`` if compressed)."""
    typing = None
    quote = '"'
    if plan.target.contract:
        if contracts is None:
            raise ValueError(f"plan names contract {plan.target.contract!r} but none are loaded")
        contract = contracts.get(plan.target.contract)
        typing = ContractTyping(contract)
        quote = contract.dialect.quote
    return EngineOptions(
        outputs=plan.target.formats,
        delimiter=plan.file.delimiter,
        quote=quote,
        compression=plan.file.compression,
        typing=typing,
        limits=limits,
        infer=typing is None and plan.target.infer,
    )


def convert(
    plan: Plan, store: Store, settings: ConvertSettings, contracts: ContractSet | None = None
) -> Output:
    """Convert ``plan.file`` to every format of ``plan.target``; return what was written.

    Outputs are streamed into multipart uploads that stay invisible until the conversion is
    done; then each is published with the fence of :mod:`tasks.fence` while staging still
    holds this version (so a reader never sees a half-written object, and an older upload never
    replaces a newer one's output). An older upload's object under a key this one has nothing
    for (``<key>.rejected.jsonl``, a format this target doesn't write) is removed the same way:
    the outputs are always one file's.

    Raises MalformedContent / ContractViolation for bad content, SourceMissing when the source
    was deleted, Superseded when a newer version was uploaded, Replaced when a later upload of
    another key that maps to the same outputs published them, SourceChanged when the object
    changed under the reader, StorageUnavailable when S3 fails in a way worth retrying.
    """
    source, target = plan.file.ref, plan.target
    options = engine_options(plan, contracts, settings.decompression)
    stamp = Stamp.of(source)
    log.info(
        "convert started",
        source_key=source.key,
        size=source.size,
        compression=plan.file.compression,
        formats=list(target.formats),
        contract=target.contract,
        target_key=target.key,
    )
    outputs = _Outputs(store, target, settings.part_size_bytes, stamp)

    def attempt(options: EngineOptions) -> EngineResult:
        """One conversion of the source, read from its start (a restart reads it again)."""
        try:
            with closing(store.open_stream(source)) as stream:
                outputs.start()
                return convert_stream(
                    stream, options, outputs.sinks(), rejected_sink=outputs.rejected.write
                )
        except Widened as widened:
            outputs.abort()  # converted again with wider types: this run's uploads are given up
            log.info(
                "convert restarted",
                source_key=source.key,
                widened=[w.to_dict() for w in widened.widenings],
            )
            raise

    try:
        result = convert_restarting(attempt, options)
        replaced = publish_outputs(store, source, stamp, target, outputs.published())
    except BaseException:
        outputs.abort()
        raise
    output = Output(
        bucket=target.bucket,
        keys={f: target.object_key(f) for f in target.formats},
        rows=result.rows,
        rejected_rows=result.rejected_rows,
        bytes={f: w.bytes_written for f, w in outputs.writers.items()},
        rejected_key=target.rejected_key if result.rejected_rows else None,
        replaced=tuple(replaced_file(other, source) for other in replaced),
        schema=dict(result.schema) if result.schema is not None else None,
        widened=tuple(w.to_dict() for w in result.widened),
    )
    _log_finished(output, result, target)
    return output


def _log_finished(output: Output, result: EngineResult, target: Target) -> None:
    log.info(
        "convert finished",
        rows=output.rows,
        rejected_rows=output.rejected_rows,
        bytes=output.bytes,
        delimiter=result.delimiter,
        schema=output.schema,
        widened=len(output.widened),
        target_key=target.key,
    )
    for other in output.replaced:
        log.warning(
            "outputs of another file replaced",
            replaced_key=other["key"],
            replaced_uploaded=other.get("uploaded"),
        )


def publish_outputs(
    store: Store, source: ObjectRef, stamp: Stamp, target: Target, outputs: dict[str, Writer]
) -> list[Stamp]:
    """Make this file's outputs visible as one set (:func:`tasks.fence.publish_all`): every key
    of the target's slots holds this file's object or, where it has none, no older one. Nothing
    is published from a file that is no longer staging's current object (deleted or replaced):
    staging is looked at right before the first object is made visible."""
    bucket = target.bucket
    looked = False

    def completes(writer: Writer, key: str) -> Callable[[Condition], None]:
        def write(condition: Condition) -> None:
            nonlocal looked
            if not looked:
                try:
                    fence.current_version(
                        source, store.exists(source.bucket, source.key), _where(source)
                    )
                except (SourceMissing, Superseded):
                    # a newer version's output in place says so first (it archived this key)
                    fence.decide(store.exists(bucket, key), stamp, f"s3://{bucket}/{key}")
                    raise
                looked = True
            writer.complete(condition)

        return write

    def slot(key: str) -> fence.Slot:
        writer = outputs.get(key)
        return fence.Slot(
            where=f"s3://{bucket}/{key}",
            look=lambda: store.exists(bucket, key),
            delete=lambda condition: store.delete_stamped(bucket, key, condition),
            write=completes(writer, key) if writer is not None else None,
        )

    return fence.publish_all([slot(key) for key in target.slot_keys()], stamp)


def replaced_file(other: Stamp, source: ObjectRef) -> dict[str, str]:
    """What the outcome says of another file whose outputs this one replaced."""
    out = {"bucket": source.bucket, "key": other.key or "", "version": other.version}
    if other.uploaded:
        out["uploaded"] = other.uploaded
    return out


def _where(ref: ObjectRef) -> str:
    return f"s3://{ref.bucket}/{ref.key}"


class _Outputs:
    """This file's outputs while they are written: one multipart writer per format of the
    target (invisible until published), and the rejected rows' writer once there are any."""

    def __init__(self, store: Store, target: Target, part_size: int, stamp: Stamp) -> None:
        self._store = store
        self._target = target
        self._part_size = part_size
        self._stamp = stamp
        self.writers: dict[OutputFormat, Writer] = {}
        self.rejected = _LazyWriter(store, target.bucket, target.rejected_key, part_size, stamp)

    def start(self) -> None:
        for output_format in self._target.formats:
            self.writers[output_format] = self._store.writer(
                self._target.bucket,
                self._target.object_key(output_format),
                part_size=self._part_size,
                content_type=CONTENT_TYPES[output_format],
                metadata=self._stamp.metadata(),
            )

    def sinks(self) -> dict[OutputFormat, Sink]:
        return {f: w.write for f, w in self.writers.items()}

    def published(self) -> dict[str, Writer]:
        """Key -> writer of every object this file publishes."""
        found = {self._target.object_key(f): w for f, w in self.writers.items()}
        if self.rejected.writer is not None:
            found[self._target.rejected_key] = self.rejected.writer
        return found

    def abort(self) -> None:
        """Give up every upload (nothing becomes visible); a restart starts new ones."""
        for writer in self.writers.values():
            writer.abort()
        self.writers.clear()
        self.rejected.abort()


class _LazyWriter:
    """A multipart writer that exists only once something is written (no empty files)."""

    def __init__(self, store: Store, bucket: str, key: str, part_size: int, stamp: Stamp) -> None:
        self._store = store
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._stamp = stamp
        self.writer: Writer | None = None

    def write(self, data: Buffer) -> None:
        if self.writer is None:
            self.writer = self._store.writer(
                self._bucket,
                self._key,
                part_size=self._part_size,
                content_type=CONTENT_TYPES["jsonl"],
                metadata=self._stamp.metadata(),
            )
        self.writer.write(data)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
