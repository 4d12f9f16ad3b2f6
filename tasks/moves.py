"""Move a staged original to another bucket under the same key: copy, check the copy, delete.

The copy is a server-side multipart copy with large parts (objects up to S3's maximum work in
one invocation, see :meth:`tasks.adapters.s3.S3Store.copy`) made only while staging still holds
the object that was announced (``if_match`` on its eTag), stamped with the source's version and
published with a conditional write, so an older version never replaces a newer one's copy
(:mod:`tasks.fence`). At every point of a crash the file exists in at least one place, and
moving again finishes the move: an original gone from staging but present at the destination
with this version's stamp counts as already moved.

What to make of each outcome (raise, report, return) is the calling step's policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from tasks import fence
from tasks.errors import SourceChanged, SourceMissing, StorageUnavailable, Superseded
from tasks.fence import Condition, Stamp
from tasks.models import ObjectRef

if TYPE_CHECKING:
    from tasks.models import Head

MoveOutcome = Literal["moved", "already_moved", "not_found", "changed"]


class Copy(Protocol):
    def complete(self, condition: Condition | None = None) -> Head: ...

    def abort(self) -> None: ...


class Store(Protocol):
    def head(self, ref: ObjectRef) -> Head: ...

    def exists(self, bucket: str, key: str) -> Head | None: ...

    def copy(
        self,
        src: ObjectRef,
        dst_bucket: str,
        dst_key: str,
        *,
        if_match: str | None = None,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> Copy: ...

    def delete(self, ref: ObjectRef) -> None: ...

    def delete_if_current(self, ref: ObjectRef) -> bool: ...


@dataclass(frozen=True)
class MoveResult:
    """What a move found and did.

    - ``moved``: copied, the copy checked, the original deleted; ``head`` is the copy.
    - ``already_moved``: the original is gone from staging and ``head`` is the object found at
      the destination (this version's, or one without a stamp of whatever size: whether that is
      the file is the caller's call).
    - ``not_found``: neither in staging nor at the destination.
    - ``changed``: staging holds another object than the announced one; nothing was touched.
      ``staged`` is that object when it was seen (else the store reported the change).
    """

    outcome: MoveOutcome
    head: Head | None = None
    staged: Head | None = None


def move(
    source: ObjectRef,
    dst_bucket: str,
    store: Store,
    *,
    before_delete: Callable[[MoveResult], None] | None = None,
) -> MoveResult:
    """Move ``source`` to ``dst_bucket`` (same key) and say what happened.

    The copy is stamped with the source's version (:mod:`tasks.fence`) and made visible only if
    no newer version's object is in place (Superseded otherwise: nothing of the newer version is
    touched). The original is then deleted as staging's current object only while it still is
    (a delete marker in versioned staging, so no older version resurfaces) and as a version.

    ``before_delete`` is called once with the result, whatever the outcome, before the original
    is deleted (e.g. to write a report that must exist whenever the original is gone); if it
    raises, the original stays in staging.

    Raises StorageUnavailable when the copy does not hold the original's size (nothing deleted).
    """
    result = _copy(source, dst_bucket, store)
    if before_delete is not None:
        before_delete(result)
    if result.outcome == "moved" and result.staged is not None:
        staged = result.staged
        store.delete_if_current(
            ObjectRef(bucket=source.bucket, key=source.key, size=staged.size, etag=staged.etag)
        )
        if source.version_id:
            store.delete(source)
    return result


def _copy(source: ObjectRef, dst_bucket: str, store: Store) -> MoveResult:
    """The move without its delete: ``moved`` means copied and checked, the original still there."""
    stamp = Stamp.of(source)
    where = f"s3://{dst_bucket}/{source.key}"
    announced = (source.etag or "").strip('"')
    try:
        staged = store.head(source)
    except SourceMissing:
        # Gone from staging: moved by an earlier attempt of the step, or deleted by someone.
        return _gone(source, dst_bucket, store, stamp, where)
    if announced and announced != staged.etag:
        return MoveResult("changed", staged=staged)
    pending: Copy | None = None
    seen: list[Head | None] = [None]

    def look() -> Head | None:
        seen[0] = store.exists(dst_bucket, source.key)
        return seen[0]

    def write(condition: Condition) -> Head:
        nonlocal pending
        if condition.same and seen[0] is not None:
            return seen[0]  # copied by an earlier attempt whose delete didn't happen
        if pending is None:
            pending = store.copy(
                source,
                dst_bucket,
                source.key,
                if_match=staged.etag or None,
                metadata=stamp.metadata(),
                content_type=staged.content_type,
            )
        return pending.complete(condition)

    try:
        copied = fence.publish(look, write, stamp, where, expect_absent=True)
    except SourceChanged:
        return MoveResult("changed")
    except SourceMissing:
        return _gone(source, dst_bucket, store, stamp, where)
    finally:
        if pending is not None:
            pending.abort()  # a no-op once completed
    if copied.size != staged.size:
        raise StorageUnavailable(
            f"copy to {where}: expected {staged.size} bytes, found {copied.size} bytes"
        )
    return MoveResult("moved", head=copied, staged=staged)


def _gone(source: ObjectRef, dst_bucket: str, store: Store, stamp: Stamp, where: str) -> MoveResult:
    """The original is not in staging: what the destination holds decides."""
    found = store.exists(dst_bucket, source.key)
    if found is None:
        return MoveResult("not_found")
    owner = Stamp.from_metadata(found.metadata)
    if owner is None or owner == stamp:
        return MoveResult("already_moved", head=found)
    if owner.newer_than(stamp):
        raise Superseded(f"{where}: superseded by version {owner.version}")
    return MoveResult("not_found")
