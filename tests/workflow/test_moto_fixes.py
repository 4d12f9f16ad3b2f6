"""Each change to moto's behaviour (chute/moto_fixes.py): a test that fails without it, and a
canary that fails once the pinned upstream version no longer needs it (then delete the fix).

They run against the embedded server, reverting one fix at a time (the suite is sequential).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chute import moto_fixes
from chute.embedded import EmbeddedAws
from tests.workflow.conftest import wait_until


@contextmanager
def without(name: str) -> Iterator[None]:
    fix = moto_fixes.FIXES[name]
    fix.revert()
    try:
        yield
    finally:
        fix.apply()


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
