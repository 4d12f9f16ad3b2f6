"""S3 (chute/local/moto_patches/s3.py): events, conditional writes and the persistence hooks.

How these tests go: tests/support/moto_patches.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from chute.local import moto_patches
from chute.local.embedded import EmbeddedAws
from tests.support.moto_patches import PASS, drain, event_names, machine, multipart, without
from tests.support.pipeline import wait_until


# --- s3-multipart-put-event -------------------------------------------------------------------
def test_multipart_completion_emits_one_event(probe: dict[str, Any]) -> None:
    drain(probe)
    multipart(probe["s3"], "m/one.csv")
    assert event_names(probe) == ["ObjectCreated:CompleteMultipartUpload"]


@pytest.mark.canary
def test_canary_multipart_completion_still_emits_a_spurious_put(probe: dict[str, Any]) -> None:
    drain(probe)
    with without("s3-multipart-put-event"):
        multipart(probe["s3"], "m/two.csv")
    assert sorted(event_names(probe)) == [
        "ObjectCreated:CompleteMultipartUpload",
        "ObjectCreated:Put",
    ]


# --- s3-event-fields --------------------------------------------------------------------------
def test_events_carry_sequencer_and_plain_slashes(probe: dict[str, Any]) -> None:
    drain(probe)
    probe["s3"].put_object(Bucket="probe-bucket", Key="a/b c.csv", Body=b"x")
    (record,) = drain(probe)
    obj = record["s3"]["object"]
    assert obj["key"] == "a/b+c.csv"  # S3 encodes a space as '+', leaves '/'
    assert len(obj["sequencer"]) > 0


@pytest.mark.canary
def test_canary_events_still_lack_sequencer(probe: dict[str, Any]) -> None:
    drain(probe)
    with without("s3-event-fields"):
        probe["s3"].put_object(Bucket="probe-bucket", Key="a/b c.csv", Body=b"x")
    (record,) = drain(probe)
    assert "sequencer" not in record["s3"]["object"]
    assert record["s3"]["object"]["key"] == "a%2Fb+c.csv"


# --- persist-* hooks ----------------------------------------------------------------------------
def test_object_changes_and_executions_are_reported(
    embedded: EmbeddedAws, probe: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    objects: list[tuple[str, str]] = []
    buckets: list[str] = []
    ended: list[str] = []
    monkeypatch.setattr(
        moto_patches.HOOKS, "object_written", lambda _b, b, k: objects.append((b, k))
    )
    monkeypatch.setattr(moto_patches.HOOKS, "bucket_written", lambda _b, b: buckets.append(b))
    monkeypatch.setattr(moto_patches.HOOKS, "execution_started", lambda e: None)
    monkeypatch.setattr(moto_patches.HOOKS, "execution_ended", lambda e: ended.append(e.name))
    s3 = probe["s3"]
    s3.put_object(Bucket="probe-bucket", Key="hook/a", Body=b"a")
    s3.copy_object(Bucket="probe-bucket", Key="hook/b", CopySource="probe-bucket/hook/a")
    s3.delete_object(Bucket="probe-bucket", Key="hook/a")
    multipart(s3, "hook/c")
    s3.delete_objects(Bucket="probe-bucket", Delete={"Objects": [{"Key": "hook/b"}]})
    assert [k for _, k in objects] == ["hook/a", "hook/b", "hook/a", "hook/c", "hook/c"]
    assert buckets == ["probe-bucket"]
    arn = machine(embedded, "probe-hooks", PASS)
    sfn = embedded.client("stepfunctions")
    run = sfn.start_execution(stateMachineArn=arn, name="hooked")["executionArn"]
    wait_until(lambda: sfn.describe_execution(executionArn=run)["status"] != "RUNNING")
    wait_until(lambda: "hooked" in ended, what="end reported")


# --- s3-complete-if-match ---------------------------------------------------------------------
def _complete_if_match(s3: Any, key: str, if_match: str) -> None:
    upload = s3.create_multipart_upload(Bucket="probe-bucket", Key=key)
    part = s3.upload_part(
        Bucket="probe-bucket", Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"new\n"
    )
    s3.complete_multipart_upload(
        Bucket="probe-bucket",
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        IfMatch=if_match,
    )


def test_complete_multipart_upload_honours_if_match(probe: dict[str, Any]) -> None:
    # GIVEN an object in place
    s3 = probe["s3"]
    etag = s3.put_object(Bucket="probe-bucket", Key="cas/x", Body=b"old\n")["ETag"]
    # WHEN a completion names another ETag THEN S3 refuses it (412) and the object is unchanged
    with pytest.raises(s3.exceptions.ClientError) as caught:
        _complete_if_match(s3, "cas/x", '"0123456789abcdef0123456789abcdef"')
    assert caught.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket="probe-bucket", Key="cas/x")["Body"].read() == b"old\n"
    # AND a completion on a key with no object is a 404
    with pytest.raises(s3.exceptions.ClientError) as missing:
        _complete_if_match(s3, "cas/absent", etag)
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
    # AND the right ETag completes
    _complete_if_match(s3, "cas/x", etag)
    assert s3.get_object(Bucket="probe-bucket", Key="cas/x")["Body"].read() == b"new\n"
    drain(probe)


@pytest.mark.canary
def test_canary_complete_multipart_upload_still_ignores_if_match(probe: dict[str, Any]) -> None:
    s3 = probe["s3"]
    s3.put_object(Bucket="probe-bucket", Key="cas/canary", Body=b"old\n")
    with without("s3-complete-if-match"):
        _complete_if_match(s3, "cas/canary", '"0123456789abcdef0123456789abcdef"')
    assert s3.get_object(Bucket="probe-bucket", Key="cas/canary")["Body"].read() == b"new\n"
    drain(probe)


# --- s3-copy-object-conditions ----------------------------------------------------------------
def _refused(s3: Any, **request: Any) -> str:
    with pytest.raises(s3.exceptions.ClientError) as caught:
        s3.copy_object(Bucket="probe-bucket", **request)
    return str(caught.value.response["Error"]["Code"])


def test_copy_object_honours_its_conditions(probe: dict[str, Any]) -> None:
    # GIVEN a source and a destination in place
    s3 = probe["s3"]
    source = {"Bucket": "probe-bucket", "Key": "cp/src"}
    src_etag = s3.put_object(**source, Body=b"src\n")["ETag"]
    dst_etag = s3.put_object(Bucket="probe-bucket", Key="cp/dst", Body=b"old\n")["ETag"]
    other = '"0123456789abcdef0123456789abcdef"'
    # WHEN a copy's condition does not hold THEN S3 refuses it and the destination is unchanged
    assert _refused(s3, Key="cp/dst", CopySource=source, IfNoneMatch="*") == "PreconditionFailed"
    assert _refused(s3, Key="cp/dst", CopySource=source, IfMatch=other) == "PreconditionFailed"
    assert _refused(s3, Key="cp/none", CopySource=source, IfMatch=dst_etag) == "NoSuchKey"
    assert (
        _refused(s3, Key="cp/new", CopySource=source, CopySourceIfMatch=other)
        == "PreconditionFailed"
    )
    assert s3.get_object(Bucket="probe-bucket", Key="cp/dst")["Body"].read() == b"old\n"
    assert "Contents" not in s3.list_objects_v2(Bucket="probe-bucket", Prefix="cp/n")
    # AND copies whose conditions hold are made
    s3.copy_object(Bucket="probe-bucket", Key="cp/new", CopySource=source, IfNoneMatch="*")
    s3.copy_object(
        Bucket="probe-bucket",
        Key="cp/dst",
        CopySource=source,
        IfMatch=dst_etag,
        CopySourceIfMatch=src_etag,
    )
    for key in ("cp/new", "cp/dst"):
        assert s3.get_object(Bucket="probe-bucket", Key=key)["Body"].read() == b"src\n"
    drain(probe)


@pytest.mark.canary
def test_canary_copy_object_still_ignores_its_conditions(probe: dict[str, Any]) -> None:
    s3 = probe["s3"]
    source = {"Bucket": "probe-bucket", "Key": "cp/canary-src"}
    s3.put_object(**source, Body=b"src\n")
    s3.put_object(Bucket="probe-bucket", Key="cp/canary", Body=b"old\n")
    with without("s3-copy-object-conditions"):
        s3.copy_object(Bucket="probe-bucket", Key="cp/canary", CopySource=source, IfNoneMatch="*")
    assert s3.get_object(Bucket="probe-bucket", Key="cp/canary")["Body"].read() == b"src\n"
    drain(probe)
