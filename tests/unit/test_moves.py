"""moves.move on a fake store: the outcomes and orderings the archive/quarantine tests don't reach.

Moving, moving again, a file gone everywhere, a replaced original and a lost copy are covered
through the steps on moto (test_archive.py, test_quarantine.py); here are the races (staging
changing between the check and the copy) and the ``before_delete`` contract.
"""

from __future__ import annotations

import pytest

from tasks.errors import SourceChanged, SourceMissing, StorageUnavailable
from tasks.fence import Condition
from tasks.models import Head, ObjectRef
from tasks.moves import MoveResult, move
from tests.support.unit import QUARANTINE, STAGING

KEY = "incoming/x.csv"
SOURCE = ObjectRef(bucket=STAGING, key=KEY, size=4, etag="e1")


class FakeStore:
    """Buckets in memory: (bucket, key) -> Head. ``on_copy`` replaces the copy with a race."""

    def __init__(self, on_copy: Exception | None = None) -> None:
        self.objects: dict[tuple[str, str], Head] = {}
        self.on_copy = on_copy
        self.calls: list[str] = []

    def head(self, ref: ObjectRef) -> Head:
        found = self.objects.get((ref.bucket, ref.key))
        if found is None:
            raise SourceMissing(f"s3://{ref.bucket}/{ref.key}: not found (404)")
        return found

    def exists(self, bucket: str, key: str) -> Head | None:
        return self.objects.get((bucket, key))

    def copy(
        self,
        src: ObjectRef,
        dst_bucket: str,
        dst_key: str,
        *,
        if_match: str | None = None,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> FakeCopy:
        self.calls.append("copy")
        if self.on_copy is not None:
            raise self.on_copy
        found = self.head(src)
        copied = Head(found.size, found.etag, None, dict(metadata or {}))
        return FakeCopy(self, dst_bucket, dst_key, copied)

    def delete(self, ref: ObjectRef) -> None:
        self.calls.append("delete")
        self.objects.pop((ref.bucket, ref.key), None)

    def delete_if_current(self, ref: ObjectRef) -> bool:
        self.calls.append("delete_if_current")
        found = self.objects.get((ref.bucket, ref.key))
        if found is None or found.etag != ref.etag:
            return False
        del self.objects[(ref.bucket, ref.key)]
        return True


class FakeCopy:
    def __init__(self, store: FakeStore, bucket: str, key: str, head: Head) -> None:
        self.store, self.bucket, self.key, self.head = store, bucket, key, head

    def complete(self, condition: Condition | None = None) -> Head:
        self.store.objects[(self.bucket, self.key)] = self.head
        return self.head

    def abort(self) -> None:
        pass


def with_original(on_copy: Exception | None = None) -> FakeStore:
    store = FakeStore(on_copy)
    store.objects[(STAGING, KEY)] = Head(size=4, etag="e1", version_id=None)
    return store


def test_an_original_replaced_before_the_copy_is_changed_and_left_alone() -> None:
    # GIVEN staging replaced between the check and the (if_match) copy
    store = with_original(on_copy=SourceChanged(f"copy s3://{STAGING}/{KEY}: object changed"))

    # WHEN moved  THEN changed, nothing copied nor deleted
    assert move(SOURCE, QUARANTINE, store) == MoveResult("changed")
    assert list(store.objects) == [(STAGING, KEY)]
    assert store.calls == ["copy"]


@pytest.mark.parametrize("in_destination", [True, False])
def test_an_original_gone_before_the_copy_is_looked_for_at_the_destination(
    in_destination: bool,
) -> None:
    # GIVEN staging emptied between the check and the copy (another attempt of the step moved it)
    store = with_original(on_copy=SourceMissing(f"copy s3://{STAGING}/{KEY}: not found (404)"))
    moved = Head(size=9, etag="other", version_id=None)
    if in_destination:
        store.objects[(QUARANTINE, KEY)] = moved

    # WHEN moved  THEN what the destination holds decides, of whatever size
    result = move(SOURCE, QUARANTINE, store)
    assert result == (
        MoveResult("already_moved", head=moved) if in_destination else MoveResult("not_found")
    )
    assert "delete" not in store.calls


def test_before_delete_sees_the_result_while_the_original_is_still_there() -> None:
    store = with_original()
    seen: list[tuple[str, bool]] = []

    def record(result: MoveResult) -> None:
        seen.append((result.outcome, (STAGING, KEY) in store.objects))

    move(SOURCE, QUARANTINE, store, before_delete=record)

    assert seen == [("moved", True)]
    assert store.calls == ["copy", "delete_if_current"]


def test_before_delete_is_called_when_there_is_nothing_to_delete_too() -> None:
    seen: list[str] = []
    move(SOURCE, QUARANTINE, FakeStore(), before_delete=lambda result: seen.append(result.outcome))
    assert seen == ["not_found"]


def test_a_failing_before_delete_keeps_the_original() -> None:
    store = with_original()

    def fail(result: MoveResult) -> None:
        raise StorageUnavailable(
            "put s3://chute-quarantine/incoming/x.csv.error.json: S3 answered 503"
        )

    with pytest.raises(StorageUnavailable):
        move(SOURCE, QUARANTINE, store, before_delete=fail)
    assert (STAGING, KEY) in store.objects
    assert "delete" not in store.calls
