"""Move the original of a converted file from staging to the archive bucket (same key).

The move itself (copy, check the copy, delete; finishing an interrupted move when run again) is
:func:`tasks.moves.move`. The policy here: an original missing from staging counts as archived
only when the archive holds its size, and every other way it was not moved is an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tasks import log, moves
from tasks.errors import SourceChanged, SourceMissing
from tasks.metrics import NOT_RECORDED, Sink
from tasks.models import FileSpec, ObjectRef
from tasks.moves import Store
from tasks.settings import ArchiveSettings

if TYPE_CHECKING:
    from tasks.models import Head


def archive(
    file: FileSpec | ObjectRef,
    store: Store,
    settings: ArchiveSettings,
    *,
    route: str | None = None,
    started: datetime | None = None,
    now: datetime | None = None,
    metrics: Sink = NOT_RECORDED,
) -> ObjectRef:
    """Where the original now lives (the archive bucket, same key).

    Raises SourceMissing when the original is neither in staging nor (with the expected size) in
    the archive, SourceChanged when staging holds another object than the one converted, and
    StorageUnavailable when the copy does not check out (the original is kept).
    """
    source = file.ref if isinstance(file, FileSpec) else file
    where = f"s3://{source.bucket}/{source.key}"
    bucket = settings.archive_bucket
    result = moves.move(source, bucket, store)
    if result.outcome == "changed":
        expected = (source.etag or "").strip('"')
        if result.staged is None:
            raise SourceChanged(f"{where}: staging no longer holds the object that was converted")
        raise SourceChanged(
            f"{where}: eTag is now {result.staged.etag}, the converted file had {expected}"
        )
    archived = result.head
    if archived is None or (result.outcome == "already_moved" and archived.size != source.size):
        raise SourceMissing(
            f"{where}: not in staging, and s3://{bucket}/{source.key} does not hold"
            f" {source.size} bytes"
        )
    if result.outcome == "already_moved":
        # moved (and counted) by an earlier attempt whose response was lost
        log.info("already archived", bucket=bucket, key=source.key)
    else:
        log.info("archived", bucket=bucket, key=source.key, size=archived.size)
        seconds = None
        if started is not None:
            seconds = max(0.0, ((now or datetime.now(UTC)) - started).total_seconds())
        metrics.file_processed(archived.size, route=route, seconds=seconds)
    return _ref(bucket, source.key, archived)


def _ref(bucket: str, key: str, head: Head) -> ObjectRef:
    return ObjectRef(
        bucket=bucket, key=key, size=head.size, etag=head.etag or None, version_id=head.version_id
    )
