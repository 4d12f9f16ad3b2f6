"""Newest version wins (tasks/fence.py): the rule on its own, then the steps that publish with it
racing on moto (S3 conditional writes as AWS has them)."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.adapters.s3 import S3Store
from tasks.archive.domain import archive
from tasks.convert.domain import convert
from tasks.errors import SourceMissing, StorageUnavailable, Superseded, WriteConflict
from tasks.fence import Condition, Stamp, current_version, decide, publish
from tasks.models import FileSpec, Head, ObjectRef, Plan, Target
from tasks.quarantine.domain import quarantine
from tasks.settings import ArchiveSettings, ConvertSettings, QuarantineSettings
from tests.support.unit import ARCHIVE, OUTPUT, QUARANTINE, STAGING

OLD = Stamp(version="v1", sequencer="0062A1")
NEW = Stamp(version="v2", sequencer="00062A2")  # shorter/longer: compared after padding


def head(stamp: Stamp | None, etag: str = "e") -> Head:
    return Head(size=1, etag=etag, version_id=None, metadata=stamp.metadata() if stamp else {})


# --- the rule ---------------------------------------------------------------------------------
def test_sequencers_compare_as_padded_hex() -> None:
    assert NEW.newer_than(OLD)
    assert not OLD.newer_than(NEW)
    assert not OLD.newer_than(OLD)
    assert Stamp("a", "FF").newer_than(Stamp("b", "0FE"))
    # unknown order (no sequencer) never counts as newer
    assert not Stamp("a", None).newer_than(OLD)
    assert not OLD.newer_than(Stamp("a", None))


def test_decide() -> None:
    assert decide(None, OLD, "w") == Condition(if_none_match=True)
    assert decide(head(OLD, "e1"), NEW, "w") == Condition(if_match="e1")
    assert decide(head(NEW, "e2"), NEW, "w") == Condition(if_match="e2", same=True)
    assert decide(head(None, "e3"), OLD, "w") == Condition(if_match="e3")  # not chute's
    with pytest.raises(Superseded, match="w: superseded by version v2"):
        decide(head(NEW), OLD, "w")


def test_publish_looks_again_after_losing_a_race() -> None:
    # GIVEN another writer wins the first conditional write
    looks = iter([None, head(OLD, "e1")])
    writes: list[Condition] = []

    def write(condition: Condition) -> str:
        writes.append(condition)
        if len(writes) == 1:
            raise WriteConflict("412")
        return "written"

    # WHEN published  THEN the second look decides the second write
    assert publish(lambda: next(looks), write, NEW, "w") == "written"
    assert writes == [Condition(if_none_match=True), Condition(if_match="e1")]


def test_publish_gives_up_after_bounded_attempts() -> None:
    def write(condition: Condition) -> None:
        raise WriteConflict("412")

    with pytest.raises(StorageUnavailable, match="kept changing"):
        publish(lambda: None, write, NEW, "w")


def test_current_version() -> None:
    ref = ObjectRef(bucket=STAGING, key="k", size=1, etag="e1", version_id="v1")
    current_version(ref, Head(1, "e1", "v1"), "w")
    with pytest.raises(SourceMissing, match="no longer in staging"):
        current_version(ref, None, "w")
    with pytest.raises(Superseded, match="superseded by version v2"):
        current_version(ref, Head(1, "e2", "v2"), "w")
    unversioned = ObjectRef(bucket=STAGING, key="k", size=1, etag="e1")
    with pytest.raises(Superseded, match="eTag e2"):
        current_version(unversioned, Head(1, "e2", None), "w")


# --- racing versions on moto --------------------------------------------------------------------
@pytest.fixture
def versioned(s3: Any) -> Any:
    s3.put_bucket_versioning(Bucket=STAGING, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_versioning(Bucket=ARCHIVE, VersioningConfiguration={"Status": "Enabled"})
    return s3


def upload(s3: Any, body: bytes, sequencer: str, key: str = "race/x.csv") -> ObjectRef:
    resp = s3.put_object(Bucket=STAGING, Key=key, Body=body)
    return ObjectRef(
        bucket=STAGING,
        key=key,
        size=len(body),
        etag=resp["ETag"].strip('"'),
        version_id=resp["VersionId"],
        sequencer=sequencer,
    )


def plan(ref: ObjectRef) -> Plan:
    return Plan(
        file=FileSpec(ref=ref, delimiter=","),
        target=Target(bucket=OUTPUT, key=ref.key, formats=("jsonl",)),
    )


CONVERT = ConvertSettings(part_size_bytes=5 * 1024 * 1024)


def output(s3: Any, key: str = "race/x.csv.jsonl") -> bytes:
    return bytes(s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read())


def test_an_older_version_finishing_last_never_replaces_the_newer_output(
    versioned: Any, store: S3Store
) -> None:
    # GIVEN an old version converting while a newer one was uploaded and converted first
    old = upload(versioned, b"id\nold\n", "0001")
    new = upload(versioned, b"id\nnew\n", "0002")
    convert(plan(new), store, CONVERT)
    # WHEN the old version's conversion tries to publish
    with pytest.raises(Superseded):
        convert(plan(old), store, CONVERT)
    # THEN the newer output stays, stamped with its version
    assert output(versioned) == b'{"id":"new"}\n'
    meta = versioned.head_object(Bucket=OUTPUT, Key="race/x.csv.jsonl")["Metadata"]
    assert meta["chute-version"] == new.version_id


def test_an_older_version_finishing_first_is_replaced_by_the_newer(
    versioned: Any, store: S3Store
) -> None:
    # GIVEN the old version converted and archived before the new one arrived
    old = upload(versioned, b"id\nold\n", "0001")
    convert(plan(old), store, CONVERT)
    archive(old, store, ArchiveSettings(archive_bucket=ARCHIVE))
    # WHEN a newer version is uploaded and processed
    new = upload(versioned, b"id\nnew\n", "0002")
    convert(plan(new), store, CONVERT)
    archive(new, store, ArchiveSettings(archive_bucket=ARCHIVE))
    # THEN output and archive hold the newer version; the older one stays in the archive history
    assert output(versioned) == b'{"id":"new"}\n'
    assert versioned.get_object(Bucket=ARCHIVE, Key=old.key)["Body"].read() == b"id\nnew\n"
    history = versioned.list_object_versions(Bucket=ARCHIVE)["Versions"]
    assert len(history) == 2
    # AND staging shows no current object
    assert versioned.list_objects_v2(Bucket=STAGING).get("KeyCount") == 0


def test_an_older_version_archived_after_the_newer_is_superseded_and_kept_in_staging(
    versioned: Any, store: S3Store
) -> None:
    # GIVEN both versions converted, the newer one archived first
    old = upload(versioned, b"id\nold\n", "0001")
    new = upload(versioned, b"id\nnew\n", "0002")
    archive(new, store, ArchiveSettings(archive_bucket=ARCHIVE))
    # WHEN the older one is archived
    with pytest.raises(Superseded):
        archive(old, store, ArchiveSettings(archive_bucket=ARCHIVE))
    # THEN the archive holds only the newer original, and the older bytes stay in staging (as a
    # noncurrent version under the delete marker, until the lifecycle expires it)
    assert versioned.get_object(Bucket=ARCHIVE, Key=old.key)["Body"].read() == b"id\nnew\n"
    kept = versioned.get_object(Bucket=STAGING, Key=old.key, VersionId=old.version_id)
    assert kept["Body"].read() == b"id\nold\n"
    assert versioned.list_objects_v2(Bucket=STAGING).get("KeyCount") == 0


def test_archiving_never_resurfaces_an_older_version(versioned: Any, store: S3Store) -> None:
    # GIVEN an older version left in staging (superseded) and the newer one archived
    upload(versioned, b"id\nold\n", "0001")
    new = upload(versioned, b"id\nnew\n", "0002")
    archive(new, store, ArchiveSettings(archive_bucket=ARCHIVE))
    # THEN the key has no current object in staging (a delete marker, not the older version)
    with pytest.raises(versioned.exceptions.ClientError):
        versioned.head_object(Bucket=STAGING, Key=new.key)


def test_a_deleted_file_is_not_published(versioned: Any, store: S3Store) -> None:
    # GIVEN a file deleted by its uploader while it was converting
    ref = upload(versioned, b"id\n1\n", "0001")
    versioned.delete_object(Bucket=STAGING, Key=ref.key)
    # WHEN the conversion publishes  THEN SourceMissing and no output
    with pytest.raises(SourceMissing):
        convert(plan(ref), store, CONVERT)
    assert versioned.list_objects_v2(Bucket=OUTPUT).get("KeyCount") == 0
    assert versioned.list_multipart_uploads(Bucket=OUTPUT).get("Uploads", []) == []


def test_a_newer_version_removes_the_older_rejected_rows(versioned: Any, store: S3Store) -> None:
    # GIVEN an older version's rejected-rows file in the output bucket
    old = upload(versioned, b"id\n1\n", "0001")
    versioned.put_object(
        Bucket=OUTPUT,
        Key="race/x.csv.rejected.jsonl",
        Body=b"{}\n",
        Metadata=Stamp.of(old).metadata(),
    )
    # WHEN a newer version without rejected rows is converted
    new = upload(versioned, b"id\n2\n", "0002")
    convert(plan(new), store, CONVERT)
    # THEN the stale rejected-rows file is gone: outputs are one version's
    assert [o["Key"] for o in versioned.list_objects_v2(Bucket=OUTPUT)["Contents"]] == [
        "race/x.csv.jsonl"
    ]


def test_an_older_quarantine_never_replaces_the_newer_report(
    versioned: Any, store: S3Store
) -> None:
    # GIVEN two bad versions, the newer one quarantined first
    old = upload(versioned, b"\x00", "0001")
    new = upload(versioned, b"\x01", "0002")
    settings = QuarantineSettings(quarantine_bucket=QUARANTINE)
    quarantine(new, "InvalidFile", "", "Validate", "ex-new", store, settings)
    # WHEN the older one is quarantined  THEN Superseded, the newer report and copy stay
    with pytest.raises(Superseded):
        quarantine(old, "InvalidFile", "", "Validate", "ex-old", store, settings)
    report = versioned.get_object(Bucket=QUARANTINE, Key="race/x.csv.error.json")
    assert b"ex-new" in report["Body"].read()
    assert versioned.get_object(Bucket=QUARANTINE, Key=new.key)["Body"].read() == b"\x01"
