"""Move a staged original to another bucket under the same key: copy, check the copy, delete.

The copy is a managed one (multipart above a threshold, so objects over 5 GB work) made only
while staging still holds the object that was announced (``if_match`` on its eTag). At every
point of a crash the file exists in at least one place, and moving again finishes the move: an
original gone from staging but present at the destination counts as already moved.

What to make of each outcome (raise, report, return) is the calling step's policy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from tasks.errors import SourceChanged, SourceMissing, StorageUnavailable
from tasks.models import ObjectRef

if TYPE_CHECKING:
    from tasks.adapters.s3 import Head

MoveOutcome = Literal["moved", "already_moved", "not_found", "changed"]


class Store(Protocol):
    def head(self, ref: ObjectRef) -> Head: ...

    def exists(self, bucket: str, key: str) -> Head | None: ...

    def copy(
        self, src: ObjectRef, dst_bucket: str, dst_key: str, *, if_match: str | None = None
    ) -> None: ...

    def delete(self, ref: ObjectRef) -> None: ...


@dataclass(frozen=True)
class MoveResult:
    """What a move found and did.

    - ``moved``: copied, the copy checked, the original deleted; ``head`` is the copy.
    - ``already_moved``: the original is gone from staging and ``head`` is the object found at
      the destination (of whatever size: whether that is the file is the caller's call).
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

    ``before_delete`` is called once with the result, whatever the outcome, before the original
    is deleted (e.g. to write a report that must exist whenever the original is gone); if it
    raises, the original stays in staging.

    Raises StorageUnavailable when the copy does not hold the original's size (nothing deleted).
    """
    result = _copy(source, dst_bucket, store)
    if before_delete is not None:
        before_delete(result)
    if result.outcome == "moved":
        store.delete(source)
    return result


def _copy(source: ObjectRef, dst_bucket: str, store: Store) -> MoveResult:
    """The move without its delete: ``moved`` means copied and checked, the original still there."""
    announced = (source.etag or "").strip('"')
    try:
        staged = store.head(source)
        if announced and announced != staged.etag:
            return MoveResult("changed", staged=staged)
        store.copy(source, dst_bucket, source.key, if_match=staged.etag or None)
    except SourceChanged:
        return MoveResult("changed")
    except SourceMissing:
        # Gone from staging: moved by an earlier attempt of the step, or deleted by someone.
        found = store.exists(dst_bucket, source.key)
        return MoveResult("not_found") if found is None else MoveResult("already_moved", head=found)
    copied = store.exists(dst_bucket, source.key)
    if copied is None or copied.size != staged.size:
        found_text = "nothing" if copied is None else f"{copied.size} bytes"
        raise StorageUnavailable(
            f"copy to s3://{dst_bucket}/{source.key}: expected {staged.size} bytes,"
            f" found {found_text}"
        )
    return MoveResult("moved", head=copied, staged=staged)
