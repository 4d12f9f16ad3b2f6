"""Move the original of a converted file from staging to the archive bucket (same key).

Copy (managed, so > 5 GB works), check the copy, then delete the original: at every point of a
crash the file exists in at least one place, and running the step again finishes the move.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from tasks import log
from tasks.errors import SourceChanged, SourceMissing, StorageUnavailable
from tasks.models import FileSpec, ObjectRef
from tasks.settings import ArchiveSettings

if TYPE_CHECKING:
    from tasks.adapters.s3 import Head


class Store(Protocol):
    def head(self, ref: ObjectRef) -> Head: ...

    def exists(self, bucket: str, key: str) -> Head | None: ...

    def copy(
        self, src: ObjectRef, dst_bucket: str, dst_key: str, *, if_match: str | None = None
    ) -> None: ...

    def delete(self, ref: ObjectRef) -> None: ...


def archive(file: FileSpec | ObjectRef, store: Store, settings: ArchiveSettings) -> ObjectRef:
    """Where the original now lives (the archive bucket, same key).

    Raises SourceMissing when the original is neither in staging nor (with the expected size) in
    the archive, and SourceChanged when staging holds another object than the one converted.
    """
    source = file.ref if isinstance(file, FileSpec) else file
    where = f"s3://{source.bucket}/{source.key}"
    bucket = settings.archive_bucket
    try:
        head = store.head(source)
    except SourceMissing:
        done = store.exists(bucket, source.key)
        if done is not None and done.size == source.size:
            log.info("already archived", bucket=bucket, key=source.key)
            return _ref(bucket, source.key, done)
        raise SourceMissing(
            f"{where}: not in staging, and s3://{bucket}/{source.key} does not hold"
            f" {source.size} bytes"
        ) from None
    expected = (source.etag or "").strip('"')
    if expected and expected != head.etag:
        raise SourceChanged(f"{where}: eTag is now {head.etag}, the converted file had {expected}")
    store.copy(source, bucket, source.key, if_match=head.etag or None)
    copied = store.exists(bucket, source.key)
    if copied is None or copied.size != head.size:
        found = "nothing" if copied is None else f"{copied.size} bytes"
        raise StorageUnavailable(
            f"copy to s3://{bucket}/{source.key}: expected {head.size} bytes, found {found}"
        )
    store.delete(source)
    log.info("archived", bucket=bucket, key=source.key, size=copied.size)
    return _ref(bucket, source.key, copied)


def _ref(bucket: str, key: str, head: Head) -> ObjectRef:
    return ObjectRef(
        bucket=bucket, key=key, size=head.size, etag=head.etag or None, version_id=head.version_id
    )
