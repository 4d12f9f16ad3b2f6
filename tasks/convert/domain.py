"""Convert one planned file: stream it from staging, write JSON Lines to the target.

Shared by the Lambda handler and the Batch container. The output is written with a multipart
upload that is aborted if anything fails, so a failed conversion leaves no object behind.
"""

from __future__ import annotations

from contextlib import closing

from tasks import log
from tasks.adapters.s3 import S3Store, translate
from tasks.convert.engine import convert_stream
from tasks.errors import ChuteError
from tasks.models import Output, Plan
from tasks.settings import ConvertSettings

CONTENT_TYPE = "application/x-ndjson"


def convert(plan: Plan, store: S3Store, settings: ConvertSettings) -> Output:
    """Convert ``plan.file`` to ``plan.target``; return what was written.

    Raises MalformedContent for bad content, SourceMissing/SourceChanged when the source is no
    longer the planned object, StorageUnavailable when S3 fails in a way worth retrying.
    """
    source, target = plan.file.ref, plan.target
    log.info(
        "convert started",
        source_bucket=source.bucket,
        source_key=source.key,
        size=source.size,
        format=plan.file.format,
        compression=plan.file.compression,
        target_bucket=target.bucket,
        target_key=target.key,
    )
    try:
        with (
            closing(store.open_stream(source)) as stream,
            store.multipart_writer(
                target.bucket,
                target.key,
                part_size=settings.part_size_bytes,
                content_type=CONTENT_TYPE,
            ) as writer,
        ):
            rows = convert_stream(stream, plan.file, writer.write)
    except ChuteError:
        raise
    except Exception as exc:
        # Reading the body happens inside the engine: a network error mid-stream surfaces
        # there untranslated. Map it to the error contract (e.g. StorageUnavailable) here.
        translated = translate(exc, what=f"read s3://{source.bucket}/{source.key}")
        if translated is exc:
            raise
        raise translated from exc
    output = Output(
        bucket=target.bucket,
        key=target.key,
        format=target.format,
        rows=rows,
        bytes=writer.bytes_written,
    )
    log.info("convert finished", rows=output.rows, bytes=output.bytes, target_key=target.key)
    return output
