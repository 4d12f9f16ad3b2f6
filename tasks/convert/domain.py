"""Convert one planned file: stream it from staging, write every target format to the output
bucket (and the rows a contract drops to ``<key>.rejected.jsonl``).

Shared by the Lambda handler and the Batch container. Each output is a multipart upload that is
aborted if anything fails, so a failed conversion leaves no object behind; outputs are
published by :mod:`tasks.fence` (newest version wins).
"""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING

from tasks import fence, log
from tasks.adapters.s3 import MultipartWriter, S3Store, translate
from tasks.convert.engine import EngineOptions, convert_stream
from tasks.convert.typed import ContractTyping
from tasks.data_contracts.model import ContractSet
from tasks.errors import ChuteError
from tasks.fence import Stamp
from tasks.models import ObjectRef, Output, OutputFormat, Plan
from tasks.settings import ConvertSettings, DecompressionLimits

if TYPE_CHECKING:
    from tasks.adapters.s3 import Head

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
    )


def convert(
    plan: Plan, store: S3Store, settings: ConvertSettings, contracts: ContractSet | None = None
) -> Output:
    """Convert ``plan.file`` to every format of ``plan.target``; return what was written.

    Outputs are streamed into multipart uploads that stay invisible until the conversion is
    done; then each is published with the fence of :mod:`tasks.fence` while staging still
    holds this version (so a reader never sees a half-written object, and an older version
    never replaces a newer one's output). A stale ``<key>.rejected.jsonl`` of an older version
    is removed the same way.

    Raises MalformedContent / ContractViolation for bad content, SourceMissing when the source
    was deleted, Superseded when a newer version was uploaded, SourceChanged when the object
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
    writers: dict[OutputFormat, MultipartWriter] = {}
    rejected = _LazyWriter(
        store, target.bucket, target.rejected_key, settings.part_size_bytes, stamp
    )
    try:
        with closing(store.open_stream(source)) as stream:
            for output_format in target.formats:
                writers[output_format] = store.writer(
                    target.bucket,
                    target.object_key(output_format),
                    part_size=settings.part_size_bytes,
                    content_type=CONTENT_TYPES[output_format],
                    metadata=stamp.metadata(),
                )
            result = convert_stream(
                stream,
                options,
                {f: w.write for f, w in writers.items()},
                rejected_sink=rejected.write,
            )
        for output_format, writer in writers.items():
            _publish(store, source, stamp, target.bucket, target.object_key(output_format), writer)
        if rejected.writer is not None:
            _publish(store, source, stamp, target.bucket, target.rejected_key, rejected.writer)
        else:
            _retract(store, source, stamp, target.bucket, target.rejected_key)
    except BaseException as exc:
        for writer in writers.values():
            writer.abort()
        rejected.abort()
        if isinstance(exc, ChuteError) or not isinstance(exc, Exception):
            raise
        # Reading the body happens inside the engine: a network error mid-stream surfaces
        # there untranslated. Map it to the error contract (e.g. StorageUnavailable) here.
        translated = translate(exc, what=f"read s3://{source.bucket}/{source.key}")
        if translated is exc:
            raise
        raise translated from exc
    output = Output(
        bucket=target.bucket,
        keys={f: target.object_key(f) for f in target.formats},
        rows=result.rows,
        rejected_rows=result.rejected_rows,
        bytes={f: w.bytes_written for f, w in writers.items()},
        rejected_key=target.rejected_key if result.rejected_rows else None,
    )
    log.info(
        "convert finished",
        rows=output.rows,
        rejected_rows=output.rejected_rows,
        bytes=output.bytes,
        delimiter=result.delimiter,
        target_key=target.key,
    )
    return output


def _publish(
    store: S3Store, source: ObjectRef, stamp: Stamp, bucket: str, key: str, writer: MultipartWriter
) -> None:
    """Make one output visible, unless a newer version's is in place or this version is no
    longer staging's current object (nothing is published from a deleted or replaced file)."""

    def look() -> Head | None:
        return store.exists(bucket, key)

    def write(condition: fence.Condition) -> None:
        # after the look: a newer version's output in place says Superseded first
        fence.current_version(source, store.exists(source.bucket, source.key), _where(source))
        writer.complete(condition)

    fence.publish(look, write, stamp, f"s3://{bucket}/{key}")


def _retract(store: S3Store, source: ObjectRef, stamp: Stamp, bucket: str, key: str) -> None:
    """Remove an older version's object at ``key`` (this version wrote none there)."""

    def look() -> Head | None:
        return store.exists(bucket, key)

    def delete(condition: fence.Condition) -> None:
        if condition.if_match and not condition.same:
            store.delete_stamped(bucket, key, condition)

    fence.publish(look, delete, stamp, f"s3://{bucket}/{key}")


def _where(ref: ObjectRef) -> str:
    return f"s3://{ref.bucket}/{ref.key}"


class _LazyWriter:
    """A multipart writer that exists only once something is written (no empty files)."""

    def __init__(self, store: S3Store, bucket: str, key: str, part_size: int, stamp: Stamp) -> None:
        self._store = store
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._stamp = stamp
        self.writer: MultipartWriter | None = None

    def write(self, data: bytes) -> None:
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
