"""Each change to moto's behaviour (chute/local/moto_patches/): a test that fails without it, and a
canary that fails once the pinned upstream version no longer needs it (then delete the fix).

They run against the embedded server, reverting one fix at a time (the suite is sequential).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chute.local import moto_patches
from chute.local.embedded import EmbeddedAws
from chute.local.moto_patches import redrive, s3_bodies
from tests.support.pipeline import wait_until


@contextmanager
def without(name: str) -> Iterator[None]:
    """Fix ``name`` reverted; fixes stacked on the same attribute after it (sfn-mock-config over
    sfn-unnamed-execution) are unwound first and stacked again after."""
    fixes = list(moto_patches.FIXES.values())
    fix = moto_patches.FIXES[name]
    above = [
        f
        for f in fixes[fixes.index(fix) + 1 :]
        if f.applied and (f.owner, f.attribute) == (fix.owner, fix.attribute)
    ]
    for f in reversed(above):
        f.revert()
    fix.revert()
    try:
        for f in above:
            f.apply()
        yield
    finally:
        for f in reversed(above):
            f.revert()
        fix.apply()
        for f in above:
            f.apply()


@pytest.fixture(scope="module")
def probe(embedded: EmbeddedAws) -> dict[str, Any]:
    """A bucket notifying a queue of its own, and helpers, outside the pipeline's resources."""
    s3, sqs = embedded.client("s3"), embedded.client("sqs")
    s3.create_bucket(Bucket="probe-bucket")
    url = sqs.create_queue(QueueName="probe-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket="probe-bucket",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return {"s3": s3, "sqs": sqs, "queue": url}


def _drain(probe: dict[str, Any]) -> list[dict[str, Any]]:
    records = []
    while True:
        resp = probe["sqs"].receive_message(QueueUrl=probe["queue"], MaxNumberOfMessages=10)
        messages = resp.get("Messages", [])
        if not messages:
            return records
        for m in messages:
            records.extend(json.loads(m["Body"]).get("Records", []))
            probe["sqs"].delete_message(QueueUrl=probe["queue"], ReceiptHandle=m["ReceiptHandle"])


def _multipart(s3: Any, key: str) -> None:
    upload = s3.create_multipart_upload(Bucket="probe-bucket", Key=key)
    part = s3.upload_part(
        Bucket="probe-bucket", Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"a,b\n"
    )
    s3.complete_multipart_upload(
        Bucket="probe-bucket",
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )


def _event_names(probe: dict[str, Any]) -> list[str]:
    return [r["eventName"] for r in _drain(probe)]


# --- s3-multipart-put-event -------------------------------------------------------------------
def test_multipart_completion_emits_one_event(probe: dict[str, Any]) -> None:
    _drain(probe)
    _multipart(probe["s3"], "m/one.csv")
    assert _event_names(probe) == ["ObjectCreated:CompleteMultipartUpload"]


@pytest.mark.canary
def test_canary_multipart_completion_still_emits_a_spurious_put(probe: dict[str, Any]) -> None:
    _drain(probe)
    with without("s3-multipart-put-event"):
        _multipart(probe["s3"], "m/two.csv")
    assert sorted(_event_names(probe)) == [
        "ObjectCreated:CompleteMultipartUpload",
        "ObjectCreated:Put",
    ]


# --- s3-event-fields --------------------------------------------------------------------------
def test_events_carry_sequencer_and_plain_slashes(probe: dict[str, Any]) -> None:
    _drain(probe)
    probe["s3"].put_object(Bucket="probe-bucket", Key="a/b c.csv", Body=b"x")
    (record,) = _drain(probe)
    obj = record["s3"]["object"]
    assert obj["key"] == "a/b+c.csv"  # S3 encodes a space as '+', leaves '/'
    assert len(obj["sequencer"]) > 0


@pytest.mark.canary
def test_canary_events_still_lack_sequencer(probe: dict[str, Any]) -> None:
    _drain(probe)
    with without("s3-event-fields"):
        probe["s3"].put_object(Bucket="probe-bucket", Key="a/b c.csv", Body=b"x")
    (record,) = _drain(probe)
    assert "sequencer" not in record["s3"]["object"]
    assert record["s3"]["object"]["key"] == "a%2Fb+c.csv"


# --- state machines for the Step Functions fixes ----------------------------------------------
def _machine(embedded: EmbeddedAws, name: str, definition: dict[str, Any]) -> str:
    sfn = embedded.client("stepfunctions")
    return str(
        sfn.create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=embedded.resources.role_arn
        )["stateMachineArn"]
    )


def _finish(embedded: EmbeddedAws, arn: str, **kwargs: Any) -> dict[str, Any]:
    sfn = embedded.client("stepfunctions")
    execution_arn = sfn.start_execution(stateMachineArn=arn, **kwargs)["executionArn"]

    def finished() -> dict[str, Any] | None:
        desc = sfn.describe_execution(executionArn=execution_arn)
        return None if desc["status"] == "RUNNING" else desc

    return dict(wait_until(finished, what="execution finished"))


PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


def test_unnamed_execution_gets_a_unique_name(embedded: EmbeddedAws) -> None:
    arn = _machine(embedded, "probe-unnamed", PASS)
    first, second = _finish(embedded, arn), _finish(embedded, arn)
    assert not first["executionArn"].endswith(":None")
    assert first["executionArn"] != second["executionArn"]


@pytest.mark.canary
def test_canary_unnamed_execution_is_still_named_none(embedded: EmbeddedAws) -> None:
    arn = _machine(embedded, "probe-unnamed-canary", PASS)
    with without("sfn-unnamed-execution"):
        desc = _finish(embedded, arn)
    assert desc["executionArn"].endswith(":None")


FAIL_WITH_STATES_ERROR = {
    "StartAt": "F",
    "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}},
}


def test_fail_state_passes_on_a_states_error(embedded: EmbeddedAws) -> None:
    arn = _machine(embedded, "probe-fail", FAIL_WITH_STATES_ERROR)
    desc = _finish(embedded, arn, input=json.dumps({"e": "States.TaskFailed", "c": "why"}))
    assert (desc["error"], desc["cause"]) == ("States.TaskFailed", "why")


@pytest.mark.canary
def test_canary_fail_state_with_states_error_still_breaks(embedded: EmbeddedAws) -> None:
    arn = _machine(embedded, "probe-fail-canary", FAIL_WITH_STATES_ERROR)
    with without("sfn-fail-states-error"):
        desc = _finish(embedded, arn, input=json.dumps({"e": "States.TaskFailed", "c": "why"}))
    assert desc["error"] == "States.Runtime"


def _batch_machine(embedded: EmbeddedAws, name: str) -> str:
    subs = embedded.substitutions()
    return _machine(
        embedded,
        name,
        {
            "StartAt": "Job",
            "States": {
                "Job": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::batch:submitJob.sync",
                    "Parameters": {
                        "JobName": "probe",
                        "JobQueue": subs["BatchJobQueueArn"],
                        "JobDefinition": subs["BatchJobDefinitionArn"],
                    },
                    "End": True,
                }
            },
        },
    )


def test_batch_sync_uses_aws_casing_both_ways(embedded: EmbeddedAws) -> None:
    embedded.inject_batch_exit(0)  # don't run the converter: only the integration is probed
    desc = _finish(embedded, _batch_machine(embedded, "probe-batch"))
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    output = json.loads(desc["output"])
    assert output["Status"] == "SUCCEEDED"
    assert output["Container"]["ExitCode"] == 0
    assert "JobId" in output


@pytest.mark.canary
def test_canary_batch_sync_request_casing_still_breaks(embedded: EmbeddedAws) -> None:
    arn = _batch_machine(embedded, "probe-batch-request-canary")
    with without("sfn-batch-casing-request"):
        desc = _finish(embedded, arn)
    assert desc["error"] == "States.Runtime"
    assert "JobName" in desc["cause"]


@pytest.mark.canary
def test_canary_batch_sync_response_casing_still_differs(embedded: EmbeddedAws) -> None:
    embedded.inject_batch_exit(0)
    arn = _batch_machine(embedded, "probe-batch-response-canary")
    with without("sfn-batch-casing-response"):
        desc = _finish(embedded, arn)
    # the .sync resolver itself looks up "JobId" in the uncased SubmitJob result
    assert desc["error"] == "States.Runtime"
    assert "JobId" in desc["cause"]


# --- batch-exit-code --------------------------------------------------------------------------
def _finished_job(embedded: EmbeddedAws, exit_code: int) -> dict[str, Any]:
    batch = embedded.client("batch")
    subs = embedded.substitutions()
    embedded.inject_batch_exit(exit_code)
    job_id = batch.submit_job(
        jobName="probe",
        jobQueue=subs["BatchJobQueueArn"],
        jobDefinition=subs["BatchJobDefinitionArn"],
    )["jobId"]

    def done() -> dict[str, Any] | None:
        (job,) = batch.describe_jobs(jobs=[job_id])["jobs"]
        return job if job["status"] in ("SUCCEEDED", "FAILED") else None

    return dict(wait_until(done, what="job finished"))


def test_describe_jobs_reports_the_exit_code(embedded: EmbeddedAws) -> None:
    job = _finished_job(embedded, 64)
    assert job["status"] == "FAILED"
    assert job["container"]["exitCode"] == 64


@pytest.mark.canary
def test_canary_describe_jobs_still_lacks_the_exit_code(embedded: EmbeddedAws) -> None:
    with without("batch-exit-code"):
        job = _finished_job(embedded, 64)
        assert "exitCode" not in job["container"]


# --- bounded memory: s3-key-file-body, s3-multipart-complete, s3-get-object-streaming,
#     s3-upload-part-copy-range, s3-copy-object-streaming ---------------------------------------
BIG = 12 * 1024 * 1024  # over SMALL_BODY_BYTES (kept in a file), two parts over 5 MiB


def _body(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + b"x" * (size % 256)


def _probe_key(key: str) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends["123456789012"]["aws"].get_bucket("probe-bucket").keys.get(key)


def _in_a_file(key: Any) -> bool:
    import tempfile

    return not isinstance(key._value_buffer, tempfile.SpooledTemporaryFile)


def _big_multipart(s3: Any, key: str, data: bytes) -> None:
    upload = s3.create_multipart_upload(Bucket="probe-bucket", Key=key)
    half = len(data) // 2
    parts = []
    for number, chunk in ((1, data[:half]), (2, data[half:])):
        part = s3.upload_part(
            Bucket="probe-bucket",
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=chunk,
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    s3.complete_multipart_upload(
        Bucket="probe-bucket",
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )


def test_a_key_adopts_a_body_in_a_file() -> None:
    import tempfile

    from moto.s3.models import FakeKey

    file = tempfile.TemporaryFile()  # noqa: SIM115 - the key owns it
    file.write(b"abc")
    key = FakeKey("k", s3_bodies.FileBody(file, 3), "123456789012", "us-east-1")  # type: ignore[arg-type]
    assert key.value == b"abc"
    assert key._value_buffer is file


@pytest.mark.canary
def test_canary_a_key_still_copies_every_body_through_memory() -> None:
    from moto.s3.models import FakeKey

    with without("s3-key-file-body"), pytest.raises(TypeError):
        FakeKey("k", s3_bodies.FileBody(None, 3), "123456789012", "us-east-1")  # type: ignore[arg-type]


def test_multipart_completion_streams_the_parts_to_a_file(probe: dict[str, Any]) -> None:
    data = _body(BIG)
    _big_multipart(probe["s3"], "big-multipart", data)
    assert _in_a_file(_probe_key("big-multipart"))
    got = probe["s3"].get_object(Bucket="probe-bucket", Key="big-multipart", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ETag"].endswith('-2"')


@pytest.mark.canary
def test_canary_multipart_completion_still_joins_the_parts_in_memory() -> None:
    from moto.s3.models import FakeMultipart

    upload = FakeMultipart("k", {}, "123456789012", "us-east-1")  # type: ignore[arg-type]
    part = upload.set_part(1, b"abc")
    complete = moto_patches.FIXES["s3-multipart-complete"].current_original()
    value, _, _ = complete(upload, iter([(1, part.etag)]))
    assert isinstance(value, bytes)


def test_get_object_streams_the_body_in_chunks(
    probe: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _body(BIG)
    _big_multipart(probe["s3"], "big-get", data)
    served: list[int] = []
    chunks = s3_bodies.key_chunks

    def spy(key: Any, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        for chunk in chunks(key, start, stop):
            served.append(len(chunk))
            yield chunk

    monkeypatch.setattr(s3_bodies, "key_chunks", spy)
    assert probe["s3"].get_object(Bucket="probe-bucket", Key="big-get")["Body"].read() == data
    ranged = probe["s3"].get_object(Bucket="probe-bucket", Key="big-get", Range="bytes=10-19")
    assert ranged["Body"].read() == data[10:20]
    assert ranged["ContentRange"] == f"bytes 10-19/{len(data)}"
    assert max(served) <= s3_bodies.CHUNK_BYTES and sum(served) == len(data) + 10


@pytest.mark.canary
def test_canary_get_object_still_reads_the_whole_body(probe: dict[str, Any]) -> None:
    from moto.s3.models import FakeKey

    probe["s3"].put_object(Bucket="probe-bucket", Key="get-canary", Body=b"abc")
    reads: list[int] = []
    getter = FakeKey.value.fget  # type: ignore[attr-defined]

    def counting(self: Any) -> bytes:
        value: bytes = getter(self)
        reads.append(len(value))
        return value

    with without("s3-get-object-streaming"):
        fix = moto_patches.FIXES["s3-key-file-body"]
        fix.revert()
        FakeKey.value = property(counting)  # type: ignore[assignment,method-assign]
        try:
            probe["s3"].get_object(Bucket="probe-bucket", Key="get-canary")["Body"].read()
        finally:
            FakeKey.value = fix.original  # type: ignore[method-assign]
            fix.apply()
    assert reads == [3]


def test_upload_part_copy_reads_only_its_range(
    probe: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = probe["s3"]
    data = _body(BIG)
    _big_multipart(s3, "copy-source", data)
    ranges: list[tuple[int, int | None]] = []
    chunks = s3_bodies.key_chunks

    def spy(key: Any, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        if key.name == "copy-source":
            ranges.append((start, stop))
        return chunks(key, start, stop)

    monkeypatch.setattr(s3_bodies, "key_chunks", spy)
    upload = s3.create_multipart_upload(Bucket="probe-bucket", Key="copy-dest")
    half = len(data) // 2
    parts = []
    for number, (start, end) in enumerate(((0, half - 1), (half, len(data) - 1)), start=1):
        part = s3.upload_part_copy(
            Bucket="probe-bucket",
            Key="copy-dest",
            UploadId=upload["UploadId"],
            PartNumber=number,
            CopySource={"Bucket": "probe-bucket", "Key": "copy-source"},
            CopySourceRange=f"bytes={start}-{end}",
        )
        parts.append({"PartNumber": number, "ETag": part["CopyPartResult"]["ETag"]})
    s3.complete_multipart_upload(
        Bucket="probe-bucket",
        Key="copy-dest",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    assert ranges == [(0, len(data) // 2), (len(data) // 2, len(data))]
    assert s3.get_object(Bucket="probe-bucket", Key="copy-dest")["Body"].read() == data


@pytest.mark.canary
def test_canary_upload_part_copy_still_reads_the_whole_source(probe: dict[str, Any]) -> None:
    from moto.s3.models import FakeKey

    probe["s3"].put_object(Bucket="probe-bucket", Key="upc-canary", Body=b"abcdef")
    upload = probe["s3"].create_multipart_upload(Bucket="probe-bucket", Key="upc-dest")
    reads: list[int] = []
    fix = moto_patches.FIXES["s3-key-file-body"]
    getter = FakeKey.value.fget  # type: ignore[attr-defined]

    def counting(self: Any) -> bytes:
        value: bytes = getter(self)
        reads.append(len(value))
        return value

    with without("s3-upload-part-copy-range"):
        fix.revert()
        FakeKey.value = property(counting, fix.original.fset)  # type: ignore[assignment,method-assign]
        try:
            probe["s3"].upload_part_copy(
                Bucket="probe-bucket",
                Key="upc-dest",
                UploadId=upload["UploadId"],
                PartNumber=1,
                CopySource={"Bucket": "probe-bucket", "Key": "upc-canary"},
                CopySourceRange="bytes=0-1",
            )
        finally:
            FakeKey.value = fix.original  # type: ignore[method-assign]
            fix.apply()
    assert 6 in reads  # the whole source, for a part of 2 bytes


def test_copy_object_spools_a_large_source_to_a_file(probe: dict[str, Any]) -> None:
    data = _body(BIG)
    _big_multipart(probe["s3"], "cp-source", data)
    probe["s3"].copy_object(
        Bucket="probe-bucket",
        Key="cp-dest",
        CopySource={"Bucket": "probe-bucket", "Key": "cp-source"},
    )
    assert _in_a_file(_probe_key("cp-dest"))
    assert probe["s3"].get_object(Bucket="probe-bucket", Key="cp-dest")["Body"].read() == data


@pytest.mark.canary
def test_canary_copy_object_still_passes_the_whole_value(probe: dict[str, Any]) -> None:
    from moto.s3.models import s3_backends

    probe["s3"].put_object(Bucket="probe-bucket", Key="cp-canary", Body=b"abc")
    backend = s3_backends["123456789012"]["aws"]
    seen: list[Any] = []
    put = type(backend).put_object

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("value"))
        return put(self, *args, **kwargs)

    with without("s3-copy-object-streaming"):
        type(backend).put_object = spy  # type: ignore[method-assign]
        try:
            copy = moto_patches.FIXES["s3-copy-object-streaming"].current_original()
            copy(backend, _probe_key("cp-canary"), "probe-bucket", "cp-canary-dest")
        finally:
            type(backend).put_object = put  # type: ignore[method-assign]
    assert seen == [b"abc"]


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
    _multipart(s3, "hook/c")
    s3.delete_objects(Bucket="probe-bucket", Delete={"Objects": [{"Key": "hook/b"}]})
    assert [k for _, k in objects] == ["hook/a", "hook/b", "hook/a", "hook/c", "hook/c"]
    assert buckets == ["probe-bucket"]
    arn = _machine(embedded, "probe-hooks", PASS)
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
    _drain(probe)


@pytest.mark.canary
def test_canary_complete_multipart_upload_still_ignores_if_match(probe: dict[str, Any]) -> None:
    s3 = probe["s3"]
    s3.put_object(Bucket="probe-bucket", Key="cas/canary", Body=b"old\n")
    with without("s3-complete-if-match"):
        _complete_if_match(s3, "cas/canary", '"0123456789abcdef0123456789abcdef"')
    assert s3.get_object(Bucket="probe-bucket", Key="cas/canary")["Body"].read() == b"new\n"
    _drain(probe)


# --- request-filter (hook) --------------------------------------------------------------------
def test_injected_s3_faults_are_answered_through_the_request_filter(embedded: EmbeddedAws) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=embedded.endpoint_url,
        region_name=embedded.settings.region,
        aws_access_key_id="probe",
        aws_secret_access_key="probe",
        config=Config(retries={"total_max_attempts": 1}),
    )
    bucket, key = embedded.resources.output_bucket, "request-filter-probe/x"
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    embedded.faults.add(f"s3:GetObject:503:1:{key}")
    try:
        # without the hook the rule is never consulted: the request is served
        with without("request-filter"):
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"x"
        # with it, the armed rule answers S3's own error
        with pytest.raises(ClientError) as error:
            s3.get_object(Bucket=bucket, Key=key)
        assert error.value.response["Error"]["Code"] == "SlowDown"
        s3.delete_object(Bucket=bucket, Key=key)
    finally:
        embedded.faults.clear()


# --- sfn-mock-config, sfn-mock-config-worker, sfn-mock-states-error ---------------------------
PROBE_LAMBDA = {
    "StartAt": "Call",
    "States": {
        "Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "probe-no-such-function", "Payload": {}},
            "ResultSelector": {"answer.$": "$.Payload.answer"},
            "End": True,
        }
    },
}
PROBE_MOCKS = {
    "StateMachines": {
        "probe-mocked": {
            "TestCases": {
                "Answers": {"Call": "Answer42"},
                "JobFails": {"Call": "TaskFailed"},
            }
        }
    },
    "MockedResponses": {
        "Answer42": {"0": {"Return": {"StatusCode": 200, "Payload": {"answer": 42}}}},
        "TaskFailed": {"0": {"Throw": {"Error": "States.TaskFailed", "Cause": "{}"}}},
    },
}


@pytest.fixture
def probe_mocks(tmp_path: Path) -> Iterator[str]:
    """A state machine calling a function that doesn't exist, and a MockConfigFile for it."""
    path = tmp_path / "MockConfigFile.json"
    path.write_text(json.dumps(PROBE_MOCKS))
    kept = moto_patches.HOOKS.mock_config_file
    moto_patches.HOOKS.mock_config_file = path
    yield "probe-mocked"
    moto_patches.HOOKS.mock_config_file = kept


def _mocked_machine(embedded: EmbeddedAws, name: str) -> str:
    sfn = embedded.client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        if machine["name"] == name:
            return str(machine["stateMachineArn"])
    return _machine(embedded, name, PROBE_LAMBDA)


def test_a_mock_test_case_runs_with_its_mocked_answer(
    embedded: EmbeddedAws, probe_mocks: str
) -> None:
    arn = _mocked_machine(embedded, probe_mocks)
    desc = _finish(embedded, arn + "#Answers")
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    assert json.loads(desc["output"]) == {"answer": 42}
    assert desc["executionArn"].startswith(arn.replace(":stateMachine:", ":execution:"))


def test_an_unknown_mock_test_case_is_a_clear_error(
    embedded: EmbeddedAws, probe_mocks: str
) -> None:
    arn = _mocked_machine(embedded, probe_mocks)
    with pytest.raises(ClientError) as raised:
        embedded.client("stepfunctions").start_execution(stateMachineArn=arn + "#Nope")
    assert raised.value.response["Error"]["Code"] == "InvalidName"
    assert "'Nope'" in raised.value.response["Error"]["Message"]


@pytest.mark.canary
def test_canary_start_execution_still_refuses_a_test_case_arn(
    embedded: EmbeddedAws, probe_mocks: str
) -> None:
    arn = _mocked_machine(embedded, probe_mocks)
    with without("sfn-mock-config"), pytest.raises(ClientError):
        embedded.client("stepfunctions").start_execution(stateMachineArn=arn + "#Answers")


@pytest.mark.canary
def test_canary_the_worker_still_ignores_the_mock_test_case(
    embedded: EmbeddedAws, probe_mocks: str
) -> None:
    arn = _mocked_machine(embedded, probe_mocks)
    with without("sfn-mock-config-worker"):
        desc = _finish(embedded, arn + "#Answers")
    assert desc["status"] == "FAILED"  # the real (missing) function was called


def test_a_mocked_states_error_keeps_its_name(embedded: EmbeddedAws, probe_mocks: str) -> None:
    desc = _finish(embedded, _mocked_machine(embedded, probe_mocks) + "#JobFails")
    assert (desc["status"], desc["error"]) == ("FAILED", "States.TaskFailed")


@pytest.mark.canary
def test_canary_a_mocked_states_error_still_breaks(embedded: EmbeddedAws, probe_mocks: str) -> None:
    arn = _mocked_machine(embedded, probe_mocks)
    with without("sfn-mock-states-error"):
        desc = _finish(embedded, arn + "#JobFails")
    assert desc["error"] == "States.Runtime"


# --- sfn-redrive-execution, sfn-redrive-describe, sfn-redrive-list ----------------------------
FLAKY = {
    "StartAt": "First",
    "States": {
        "First": {"Type": "Pass", "Result": "done", "ResultPath": "$.first", "Next": "Flaky"},
        "Flaky": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Broken"}],
            "Default": "Fine",
        },
        "Broken": {"Type": "Fail", "Error": "Broken", "Cause": "it was broken"},
        "Fine": {"Type": "Succeed"},
    },
}


def _backend_execution(embedded: EmbeddedAws, arn: str) -> Any:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    r = embedded.resources
    return stepfunctions_parser_backends[r.account][r.region].describe_execution(arn)


def test_a_failed_execution_is_redriven_in_place(embedded: EmbeddedAws) -> None:
    sfn = embedded.client("stepfunctions")
    failed = _finish(embedded, _machine(embedded, "probe-redrive", FLAKY), input='{"fail": true}')
    arn = failed["executionArn"]
    assert (failed["redriveCount"], failed["redriveStatus"]) == (0, "REDRIVABLE")
    sfn.redrive_execution(executionArn=arn)
    desc = wait_until(
        lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
        what="redrive finished",
    )
    # same execution, resumed at the state it failed in: it fails there again
    assert (desc["status"], desc["error"], desc["redriveCount"]) == ("FAILED", "Broken", 1)
    assert "redriveDate" in desc
    events = sfn.get_execution_history(executionArn=arn)["events"]
    types = [e["type"] for e in events]
    assert types.count("ExecutionStarted") == 1 and types.count("ExecutionRedriven") == 1
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    after = types.index("ExecutionRedriven")
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in events[after:]
        if "stateEnteredEventDetails" in e
    ]
    assert entered == ["Broken"]
    listed = sfn.list_executions(stateMachineArn=desc["stateMachineArn"])["executions"]
    assert next(e for e in listed if e["executionArn"] == arn)["redriveCount"] == 1


def test_a_succeeded_or_old_execution_is_not_redriven(embedded: EmbeddedAws) -> None:
    sfn = embedded.client("stepfunctions")
    arn = _machine(embedded, "probe-redrive-refused", FLAKY)
    succeeded = _finish(embedded, arn, input='{"fail": false}')
    with pytest.raises(ClientError) as raised:
        sfn.redrive_execution(executionArn=succeeded["executionArn"])
    assert raised.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert succeeded["redriveStatus"] == "NOT_REDRIVABLE"
    old = _finish(embedded, arn, input='{"fail": true}')
    backend = _backend_execution(embedded, old["executionArn"])
    backend.stop_date -= redrive.REDRIVE_WINDOW + timedelta(minutes=1)
    with pytest.raises(ClientError) as raised:
        sfn.redrive_execution(executionArn=old["executionArn"])
    assert raised.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    desc = sfn.describe_execution(executionArn=old["executionArn"])
    assert desc["redriveStatusReason"] == "Execution redrivable period exceeded."


@pytest.mark.canary
def test_canary_redrive_execution_is_still_missing(embedded: EmbeddedAws) -> None:
    failed = _finish(
        embedded, _machine(embedded, "probe-redrive-canary", FLAKY), input='{"fail": true}'
    )
    with without("sfn-redrive-execution"), pytest.raises(ClientError):
        embedded.client("stepfunctions").redrive_execution(executionArn=failed["executionArn"])


@pytest.mark.canary
def test_canary_describe_and_list_still_lack_redrive_fields(embedded: EmbeddedAws) -> None:
    sfn = embedded.client("stepfunctions")
    arn = _machine(embedded, "probe-redrive-fields-canary", FLAKY)
    failed = _finish(embedded, arn, input='{"fail": true}')
    with without("sfn-redrive-describe"), without("sfn-redrive-list"):
        desc = sfn.describe_execution(executionArn=failed["executionArn"])
        (item,) = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert "redriveStatus" not in desc and "redriveCount" not in desc
    assert "redriveCount" not in item


def test_an_execution_of_an_earlier_run_is_redriven_from_its_record(
    embedded: EmbeddedAws,
) -> None:
    # GIVEN a failed execution as a restart restores it (its record, no interpreter state)
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    from chute.local.moto_patches.redrive import INTERRUPTED_ERROR, RestoredExecution
    from chute.local.persistence import describe_of

    sfn = embedded.client("stepfunctions")
    arn = _machine(embedded, "probe-redrive-restored", FLAKY)
    r = embedded.resources
    machine = stepfunctions_parser_backends[r.account][r.region].describe_state_machine(arn)

    def restored(input_: str, error: str | None = None) -> str:
        live = _backend_execution(embedded, _finish(embedded, arn, input=input_)["executionArn"])
        describe = describe_of(live)
        describe["error"] = error or describe["error"]
        history = live.to_history_output()["events"]
        machine.executions[machine.executions.index(live)] = RestoredExecution(describe, history)
        return str(live.execution_arn)

    failed, interrupted = restored('{"fail": true}'), restored('{"fail": true}', INTERRUPTED_ERROR)
    # WHEN it is redriven
    sfn.redrive_execution(executionArn=failed)
    desc = wait_until(
        lambda: (d := sfn.describe_execution(executionArn=failed))["status"] != "RUNNING" and d,
        what="redrive finished",
    )
    # THEN the same execution resumed at its failed state, its history kept
    assert (desc["status"], desc["error"], desc["redriveCount"]) == ("FAILED", "Broken", 1)
    events = sfn.get_execution_history(executionArn=failed)["events"]
    assert [e["type"] for e in events].count("ExecutionRedriven") == 1
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    # AND one interrupted by the stop (its file announced again) is not redriven
    with pytest.raises(ClientError) as raised:
        sfn.redrive_execution(executionArn=interrupted)
    assert "interrupted by a stop" in raised.value.response["Error"]["Message"]


# --- speed: the endpoint's own work per execution and per request ----------------------------
SHAPING_PASS = {
    "StartAt": "Shape",
    "States": {
        "Shape": {
            "Type": "Pass",
            "Parameters": {"n.$": "$.n", "pair.$": "States.ArrayLength(States.Array($.n, $.n))"},
            "ResultPath": "$.shaped",
            "Next": "Done",
        },
        "Done": {"Type": "Pass", "OutputPath": "$.shaped", "End": True},
    },
}


@contextmanager
def _count_parses() -> Iterator[list[int]]:
    """How many times the ASL lexer runs (one per full parse of a definition)."""
    from moto.stepfunctions.parser.asl.parse import asl_parser

    real = asl_parser.ASLLexer
    calls = [0]

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    asl_parser.ASLLexer = counting  # type: ignore[assignment,misc]
    try:
        yield calls
    finally:
        asl_parser.ASLLexer = real  # type: ignore[misc]


def test_executions_reuse_the_parsed_definition_and_keep_their_own_state(
    embedded: EmbeddedAws,
) -> None:
    # GIVEN a state machine that has run once
    arn = _machine(embedded, "probe-parse-once", SHAPING_PASS)
    _finish(embedded, arn, input=json.dumps({"n": 0}))
    sfn = embedded.client("stepfunctions")
    # WHEN five more executions with different inputs run at the same time
    with _count_parses() as parses:
        arns = [
            sfn.start_execution(stateMachineArn=arn, input=json.dumps({"n": n}))["executionArn"]
            for n in range(1, 6)
        ]

        def outputs() -> list[Any] | None:
            described = [sfn.describe_execution(executionArn=a) for a in arns]
            if any(d["status"] == "RUNNING" for d in described):
                return None
            return [json.loads(d.get("output") or "null") for d in described]

        results = wait_until(outputs, what="executions finished")
    # THEN none parsed the definition again, and each computed its own result
    assert parses[0] == 0
    assert results == [{"n": n, "pair": 2} for n in range(1, 6)]


@pytest.mark.canary
def test_canary_every_execution_still_parses_the_definition(embedded: EmbeddedAws) -> None:
    arn = _machine(embedded, "probe-parse-once-canary", SHAPING_PASS)
    with without("sfn-parse-once"), _count_parses() as parses:
        _finish(embedded, arn, input=json.dumps({"n": 1}))
        _finish(embedded, arn, input=json.dumps({"n": 2}))
    assert parses[0] == 2


def test_task_states_reuse_one_client_per_service(embedded: EmbeddedAws) -> None:
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    first = boto_client_for(region="us-east-1", service="sns")
    assert boto_client_for(region="us-east-1", service="sns") is first
    assert boto_client_for(region="us-east-1", service="sqs") is not first


@pytest.mark.canary
def test_canary_task_states_still_create_a_client_each(embedded: EmbeddedAws) -> None:
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    with without("sfn-client-reuse"):
        first = boto_client_for(region="us-east-1", service="sns")
        assert boto_client_for(region="us-east-1", service="sns") is not first


def test_jsonpath_expressions_are_parsed_once(embedded: EmbeddedAws) -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    assert json_path.parse("$.source.key") is json_path.parse("$.source.key")
    assert result_path.parse("$.plan") is result_path.parse("$.plan")
    assert json_path.extract_json("$.a.b", {"a": {"b": 7}}) == 7


@pytest.mark.canary
def test_canary_jsonpath_expressions_are_still_parsed_every_time(embedded: EmbeddedAws) -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    with without("sfn-jsonpath-cache"), without("sfn-result-path-cache"):
        assert json_path.parse("$.source.key") is not json_path.parse("$.source.key")
        assert result_path.parse("$.plan") is not result_path.parse("$.plan")


@contextmanager
def _count_module_scans() -> Iterator[list[int]]:
    from moto import backends

    real = backends.list_of_moto_modules
    calls = [0]

    def counting() -> Any:
        calls[0] += 1
        return real()

    backends.list_of_moto_modules = counting  # type: ignore[assignment]
    try:
        yield calls
    finally:
        backends.list_of_moto_modules = real  # type: ignore[assignment]


def test_requests_find_their_service_without_scanning_moto(probe: dict[str, Any]) -> None:
    probe["s3"].head_bucket(Bucket="probe-bucket")  # this host is known from here on
    with _count_module_scans() as scans:
        for _ in range(3):
            probe["s3"].head_bucket(Bucket="probe-bucket")
    assert scans[0] == 0


@pytest.mark.canary
def test_canary_every_request_still_scans_moto(probe: dict[str, Any]) -> None:
    with without("server-dispatch-cache"), _count_module_scans() as scans:
        probe["s3"].head_bucket(Bucket="probe-bucket")
    assert scans[0] > 0
