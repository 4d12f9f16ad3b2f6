"""Archive: copy the original to the archive bucket, check the copy, delete it from staging."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tasks.adapters import s3 as s3_adapter
from tasks.adapters.s3 import S3Store
from tasks.archive import handler as archive_handler
from tasks.archive.domain import archive
from tasks.errors import SourceChanged, SourceMissing, StorageUnavailable, WriteConflict
from tasks.fence import Condition
from tasks.models import FileSpec, Head, ObjectRef
from tasks.settings import ArchiveSettings
from tests.support.unit import ARCHIVE, KEYS, SEQUENCER, STAGING, fresh, put

SETTINGS = ArchiveSettings(archive_bucket=ARCHIVE)


def stage(s3: Any, key: str, body: bytes = b"id,name\n1,alice\n") -> FileSpec:
    """Stage an object; the FileSpec Validate would have produced for it."""
    return FileSpec(ref=put(s3, key, body), compression="none")


def keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.mark.parametrize("key", KEYS)
def test_archive_moves_the_original(s3: Any, store: S3Store, key: str) -> None:
    # GIVEN a converted file in staging
    file = stage(s3, key)

    # WHEN archived
    archived = archive(file, store, SETTINGS)

    # THEN it is in the archive bucket under the same key, byte for byte, and gone from staging
    head = s3.head_object(Bucket=ARCHIVE, Key=key)
    assert archived == ObjectRef(
        bucket=ARCHIVE, key=key, size=file.ref.size, etag=head["ETag"].strip('"')
    )
    body = s3.get_object(Bucket=ARCHIVE, Key=key)["Body"].read()
    assert body == b"id,name\n1,alice\n"
    assert keys(s3, STAGING) == []


def test_archive_accepts_a_plain_object_ref(s3: Any, store: S3Store) -> None:
    file = stage(s3, "incoming/x.csv")
    assert archive(file.ref, store, SETTINGS).bucket == ARCHIVE
    assert keys(s3, ARCHIVE) == ["incoming/x.csv"]


def test_archive_twice_returns_the_archived_object(s3: Any, store: S3Store) -> None:
    # GIVEN a file that was archived, but the step is run again (retry after a lost response)
    file = stage(s3, "incoming/x.csv")
    first = archive(file, store, SETTINGS)

    # WHEN archived again  THEN the same archived object, no error
    assert archive(file, store, SETTINGS) == first
    assert keys(s3, ARCHIVE) == ["incoming/x.csv"]


def test_archive_of_a_file_gone_everywhere_is_source_missing(s3: Any, store: S3Store) -> None:
    file = stage(s3, "incoming/x.csv")
    s3.delete_object(Bucket=STAGING, Key="incoming/x.csv")

    with pytest.raises(SourceMissing) as caught:
        archive(file, store, SETTINGS)
    assert str(caught.value) == (
        f"s3://{STAGING}/incoming/x.csv: not in staging, and"
        f" s3://{ARCHIVE}/incoming/x.csv does not hold {file.ref.size} bytes"
    )


def test_an_archived_object_of_another_size_does_not_count(s3: Any, store: S3Store) -> None:
    # GIVEN the original gone, and an older, different file under the key in the archive
    file = stage(s3, "incoming/x.csv")
    s3.delete_object(Bucket=STAGING, Key="incoming/x.csv")
    s3.put_object(Bucket=ARCHIVE, Key="incoming/x.csv", Body=b"older")

    with pytest.raises(SourceMissing):
        archive(file, store, SETTINGS)


def test_a_replaced_original_is_left_alone(s3: Any, store: S3Store) -> None:
    # GIVEN the converted file was overwritten in staging by a new upload
    file = stage(s3, "incoming/x.csv")
    s3.put_object(Bucket=STAGING, Key="incoming/x.csv", Body=b"a,b\nnew upload\n")

    # WHEN archived  THEN SourceChanged, and the new upload stays in staging, unarchived
    with pytest.raises(SourceChanged):
        archive(file, store, SETTINGS)
    assert keys(s3, STAGING) == ["incoming/x.csv"]
    assert keys(s3, ARCHIVE) == []


def test_versioned_staging_moves_exactly_that_version(s3: Any, store: S3Store) -> None:
    # GIVEN a versioned staging bucket holding two versions of the key
    s3.put_bucket_versioning(Bucket=STAGING, VersioningConfiguration={"Status": "Enabled"})
    old = stage(s3, "incoming/x.csv", b"a\n1\n")
    new = stage(s3, "incoming/x.csv", b"a\n1\n2\n")
    assert old.ref.version_id and new.ref.version_id

    # WHEN the older version is archived
    archived = archive(old, store, SETTINGS)

    # THEN the archive holds that version's bytes and only that version left staging
    assert s3.get_object(Bucket=ARCHIVE, Key="incoming/x.csv")["Body"].read() == b"a\n1\n"
    assert archived.size == 4
    versions = s3.list_object_versions(Bucket=STAGING)["Versions"]
    assert [v["VersionId"] for v in versions] == [new.ref.version_id]


class _ShortCopy:
    def complete(self, condition: Condition | None = None) -> Head:
        return Head(size=0, etag="e", version_id=None)

    def abort(self) -> None:
        pass


class NoCopyStore(S3Store):
    """A store whose copy lands empty (a lost write)."""

    def copy(self, src: ObjectRef, dst_bucket: str, dst_key: str, **kwargs: Any) -> Any:
        return _ShortCopy()


def test_an_unverified_copy_keeps_the_original(s3: Any) -> None:
    # GIVEN a copy that did not land
    file = stage(s3, "incoming/x.csv")

    # WHEN archived  THEN a transient error (retried) and the original is still in staging
    with pytest.raises(StorageUnavailable) as caught:
        archive(file, NoCopyStore(), SETTINGS)
    assert str(caught.value) == (
        f"copy to s3://{ARCHIVE}/incoming/x.csv: expected {file.ref.size} bytes, found 0 bytes"
    )
    assert keys(s3, STAGING) == ["incoming/x.csv"]


class RacedCopyStore(S3Store):
    """A store whose copy finds the original replaced since it was checked (if_match fails)."""

    def copy(self, src: ObjectRef, dst_bucket: str, dst_key: str, **kwargs: Any) -> Any:
        raise SourceChanged(f"copy s3://{src.bucket}/{src.key}: object changed since the event")


def test_an_original_replaced_during_the_copy_is_left_alone(s3: Any) -> None:
    file = stage(s3, "incoming/x.csv")

    with pytest.raises(SourceChanged):
        archive(file, RacedCopyStore(), SETTINGS)
    assert keys(s3, STAGING) == ["incoming/x.csv"]
    assert keys(s3, ARCHIVE) == []


def test_archive_copies_in_parts(s3: Any, store: S3Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an object of 13 copy parts (parts made small so the test stays small: 5 MiB)
    monkeypatch.setattr(s3_adapter, "COPY_PART_BYTES", 5 * 1024 * 1024)
    body = bytes(range(256)) * (65 * 4096)  # 65 MiB, every byte position distinct mod 256
    file = stage(s3, "incoming/big.csv", body)

    # WHEN archived  THEN the parallel multipart copy arrives whole and in order
    archived = archive(file, store, SETTINGS)
    assert archived.size == len(body)
    assert archived.etag and archived.etag.endswith("-13")
    assert s3.get_object(Bucket=ARCHIVE, Key="incoming/big.csv")["Body"].read() == body
    assert keys(s3, STAGING) == []
    # AND it is stamped with the version it holds
    meta = s3.head_object(Bucket=ARCHIVE, Key="incoming/big.csv")["Metadata"]
    assert meta == {
        "chute-version": file.ref.etag,
        "chute-sequencer": SEQUENCER,
        "chute-key": "incoming/big.csv",
        "chute-uploaded": file.ref.uploaded,
    }


def _operations(store: S3Store) -> list[str]:
    """The S3 operations ``store`` makes from now on, in order."""
    made: list[str] = []
    store.client.meta.events.register("before-call.s3", lambda model, **_: made.append(model.name))
    return made


@pytest.mark.parametrize("body", [b"id,name\n1,alice\n", b""], ids=["small", "empty"])
def test_an_original_of_one_part_is_copied_by_one_request(
    s3: Any, store: S3Store, body: bytes
) -> None:
    # GIVEN a staged original that fits one copy part, with a content type
    file = stage(s3, "incoming/one.csv", body)
    s3.copy_object(
        Bucket=STAGING,
        Key="incoming/one.csv",
        CopySource={"Bucket": STAGING, "Key": "incoming/one.csv"},
        MetadataDirective="REPLACE",
        ContentType="text/csv",
    )
    file = stage_again(s3, file)
    made = _operations(store)

    # WHEN archived
    archived = archive(file, store, SETTINGS)

    # THEN one CopyObject made the copy (no multipart upload), stamped, of the same type
    assert made.count("CopyObject") == 1
    assert not {"CreateMultipartUpload", "UploadPartCopy", "CompleteMultipartUpload"} & set(made)
    head = s3.head_object(Bucket=ARCHIVE, Key="incoming/one.csv")
    assert archived.size == len(body) == head["ContentLength"]
    assert head["ContentType"] == "text/csv"
    assert head["Metadata"]["chute-version"] == file.ref.etag
    assert keys(s3, STAGING) == []


def test_a_copy_with_the_originals_etag_is_not_looked_at_again(s3: Any, store: S3Store) -> None:
    # GIVEN a staged original of one part
    file = stage(s3, "incoming/same.csv")
    made = _operations(store)

    # WHEN archived
    archived = archive(file, store, SETTINGS)

    # THEN the copy's answer (the original's eTag: the same bytes) is its check: no HEAD after it
    assert "HeadObject" not in made[made.index("CopyObject") :]
    assert made[-1] == "DeleteObject"
    head = s3.head_object(Bucket=ARCHIVE, Key="incoming/same.csv")
    assert (archived.size, archived.etag, archived.version_id) == (
        head["ContentLength"],
        head["ETag"].strip('"'),
        head.get("VersionId"),
    )


def test_a_copy_with_another_etag_is_looked_at(s3: Any, store: S3Store) -> None:
    # GIVEN a copy whose answer names another eTag than the original's (as SSE-KMS objects do)
    file = stage(s3, "incoming/kms.csv")

    def other_etag(parsed: dict[str, Any], **_: Any) -> None:
        parsed["CopyObjectResult"]["ETag"] = '"0123456789abcdef0123456789abcdef"'

    store.client.meta.events.register("after-call.s3.CopyObject", other_etag)
    made = _operations(store)

    # WHEN archived
    archived = archive(file, store, SETTINGS)

    # THEN the copy was looked at (its size checked) before the original was deleted
    assert made[made.index("CopyObject") + 1 : made.index("CopyObject") + 3] == [
        "HeadObject",
        "DeleteObject",
    ]
    assert archived.size == file.ref.size
    assert keys(s3, STAGING) == []


def stage_again(s3: Any, file: FileSpec) -> FileSpec:
    """``file`` as staging now holds it (after an in-place copy changed its metadata)."""
    head = s3.head_object(Bucket=STAGING, Key=file.ref.key)
    ref = ObjectRef(
        bucket=STAGING,
        key=file.ref.key,
        size=head["ContentLength"],
        etag=head["ETag"].strip('"'),
        sequencer=file.ref.sequencer,
        uploaded=file.ref.uploaded,
    )
    return FileSpec(ref=ref, compression="none")


def test_a_copy_the_source_refuses_is_source_changed(s3: Any, store: S3Store) -> None:
    # GIVEN a copy started for an eTag the original no longer has
    file = stage(s3, "incoming/x.csv")
    pending = store.copy(file.ref, ARCHIVE, "incoming/x.csv", if_match="0" * 32)

    # WHEN completed  THEN the source's answer says so, and nothing was copied
    with pytest.raises(SourceChanged):
        pending.complete(Condition(if_none_match=True))
    assert keys(s3, ARCHIVE) == []


def test_a_copy_the_destination_refuses_is_a_write_conflict(s3: Any, store: S3Store) -> None:
    # GIVEN an object already at the destination
    file = stage(s3, "incoming/x.csv")
    s3.put_object(Bucket=ARCHIVE, Key="incoming/x.csv", Body=b"other\n")
    pending = store.copy(file.ref, ARCHIVE, "incoming/x.csv", if_match=file.ref.etag)

    # WHEN completed as a new object  THEN a conflict to look at again; the object in place stays
    with pytest.raises(WriteConflict):
        pending.complete(Condition(if_none_match=True))
    assert s3.get_object(Bucket=ARCHIVE, Key="incoming/x.csv")["Body"].read() == b"other\n"
    # AND completing on the eTag in place copies
    in_place = s3.head_object(Bucket=ARCHIVE, Key="incoming/x.csv")["ETag"]
    assert pending.complete(Condition(if_match=in_place)).size == file.ref.size


# --- handler ------------------------------------------------------------------------------------
@pytest.fixture
def env(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CHUTE_ARCHIVE_BUCKET", ARCHIVE)
    with fresh():
        yield


def test_handler_returns_the_archived_ref(s3: Any, env: None) -> None:
    # GIVEN the state machine's input to Archive
    file = stage(s3, "incoming/déjà vu/DATA.CSV")
    event = {"file": file.to_dict(), "execution": "DATA-CSV-0123"}

    # WHEN the handler runs  THEN it returns the archived ObjectRef as a dict
    result = archive_handler.handler(event, None)
    head = s3.head_object(Bucket=ARCHIVE, Key="incoming/déjà vu/DATA.CSV")
    assert result == {
        "bucket": ARCHIVE,
        "key": "incoming/déjà vu/DATA.CSV",
        "size": file.ref.size,
        "eTag": head["ETag"].strip('"'),
    }
