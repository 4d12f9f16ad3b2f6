"""Convert one planned file: stream it from staging, write every target format to the output
bucket (and the rows a contract drops to ``<key>.rejected.jsonl``).

Shared by the Lambda handler and the Batch container. Each output is a multipart upload that is
aborted if anything fails, so a failed conversion leaves no object behind.
"""

from __future__ import annotations

from contextlib import ExitStack, closing
from typing import Any

from tasks import log
from tasks.adapters.s3 import MultipartWriter, S3Store, translate
from tasks.contracts import ContractSet
from tasks.convert.engine import EngineOptions, convert_stream
from tasks.convert.typed import ContractTyping
from tasks.errors import ChuteError
from tasks.models import Output, OutputFormat, Plan
from tasks.settings import ConvertSettings, DecompressionLimits

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

    Raises MalformedContent / ContractViolation for bad content, SourceMissing/SourceChanged
    when the source is no longer the planned object, StorageUnavailable when S3 fails in a way
    worth retrying.
    """
    source, target = plan.file.ref, plan.target
    options = engine_options(plan, contracts, settings.decompression)
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
    rejected = _LazyWriter(store, target.bucket, target.rejected_key, settings.part_size_bytes)
    try:
        with ExitStack() as stack:
            stream = stack.enter_context(closing(store.open_stream(source)))
            for output_format in target.formats:
                writers[output_format] = stack.enter_context(
                    store.multipart_writer(
                        target.bucket,
                        target.object_key(output_format),
                        part_size=settings.part_size_bytes,
                        content_type=CONTENT_TYPES[output_format],
                    )
                )
            result = convert_stream(
                stream,
                options,
                {f: w.write for f, w in writers.items()},
                rejected_sink=rejected.write,
            )
            rejected.finish()
    except ChuteError:
        rejected.abort()
        raise
    except Exception as exc:
        rejected.abort()
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


class _LazyWriter:
    """A multipart writer that exists only once something is written (no empty files)."""

    def __init__(self, store: S3Store, bucket: str, key: str, part_size: int) -> None:
        self._store = store
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._context: Any = None
        self._writer: MultipartWriter | None = None

    def write(self, data: bytes) -> None:
        if self._writer is None:
            self._context = self._store.multipart_writer(
                self._bucket,
                self._key,
                part_size=self._part_size,
                content_type=CONTENT_TYPES["jsonl"],
            )
            self._writer = self._context.__enter__()
        self._writer.write(data)

    def finish(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None

    def abort(self) -> None:
        if self._writer is not None and self._context is not None:
            self._writer.abort()
            self._context = None
