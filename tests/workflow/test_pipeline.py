"""The real state machine on the embedded runtime, with the project's handlers and Batch command.

Each test uses its own keys, so tests don't see each other's files.
"""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pyarrow.parquet as pq
import pytest

from chute.local.embedded import EmbeddedAws
from tasks.formats import keys
from tests.support.pipeline import LARGE_THRESHOLD, Pipeline, wait_until

SMALL_CSV = b'id,name,city\n1,Ann,Oslo\n2,"Smith, Bob",Z\xc3\xbcrich\n'


def _entered(history: list[dict]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]


def _task_failures(history: list[dict]) -> list[str]:
    return [e["taskFailedEventDetails"]["error"] for e in history if "taskFailedEventDetails" in e]


def test_small_file_takes_the_lambda_route_and_is_archived(pipeline: Pipeline) -> None:
    # GIVEN a small CSV whose key has a space, a plus and unicode
    key = "small/orders 2026+ü.csv"
    # WHEN it lands in staging
    pipeline.put(key, SMALL_CSV)
    ex = pipeline.wait_for(key)
    # THEN it is converted in Lambda, archived, and staging no longer holds it
    assert ex.status == "SUCCEEDED", ex.cause
    assert ex.route == "lambda"
    base = "small/orders 2026+ü.csv"
    expected = [
        {"id": 1, "name": "Ann", "city": "Oslo"},
        {"id": 2, "name": "Smith, Bob", "city": "Zürich"},
    ]
    assert pipeline.jsonl(pipeline.r.output_bucket, f"{base}.jsonl") == expected
    # AND the Parquet output holds the same rows (types inferred: no contract matches)
    assert pipeline.parquet(pipeline.r.output_bucket, f"{base}.parquet") == expected
    assert pipeline.read(pipeline.r.archive_bucket, key) == SMALL_CSV
    assert key not in pipeline.keys(pipeline.r.staging_bucket)
    assert ex.output is not None
    assert ex.output["output"] == {
        "bucket": pipeline.r.output_bucket,
        "key": base,
        "formats": ["jsonl", "parquet"],
        "contract": None,
        "infer": True,
        "keys": {"jsonl": f"{base}.jsonl", "parquet": f"{base}.parquet"},
    }
    # AND one completion message tells downstream consumers where the output is
    (message,) = wait_until(lambda: pipeline.completion_for(key), what="completion message")
    assert message["status"] == "SUCCEEDED"
    assert message["execution"] == ex.name
    assert message["output"] == ex.output["output"]
    assert message["archive"]["bucket"] == pipeline.r.archive_bucket


def test_large_file_takes_the_batch_route(pipeline: Pipeline) -> None:
    # GIVEN a gzip CSV above the routing threshold
    rows = [f"{i},name-{i},{i * 1.5}" for i in range(400)]
    body = gzip.compress(("n,name,value\n" + "\n".join(rows) + "\n").encode())
    assert len(body) >= LARGE_THRESHOLD
    key = "large/readings.csv.gz"
    # WHEN it lands in staging
    pipeline.put(key, body)
    ex = pipeline.wait_for(key)
    # THEN the Batch job converted it with the same code, and it is archived
    assert ex.status == "SUCCEEDED", ex.cause
    assert ex.route == "batch"
    records = pipeline.jsonl(pipeline.r.output_bucket, "large/readings.csv.jsonl")
    assert len(records) == 400
    assert records[399] == {"n": 399, "name": "name-399", "value": 598.5}
    assert pipeline.read(pipeline.r.archive_bucket, key) == body
    assert key not in pipeline.keys(pipeline.r.staging_bucket)
    assert ex.output is not None and ex.output["convert"]["route"] == "batch"
    # AND the job was sized to the file (the stack's sizing here: 1 vCPU), and ran on that many
    # cores: the runner pins it as Fargate's quota would, the engine counted them
    scheduled = [
        json.loads(e["taskScheduledEventDetails"]["parameters"])
        for e in pipeline.history(ex.arn)
        if e["type"] == "TaskScheduled"
        and e["taskScheduledEventDetails"]["resourceType"] == "batch"
    ]
    assert [s["ContainerOverrides"]["ResourceRequirements"] for s in scheduled] == [
        [{"Type": "VCPU", "Value": "1"}, {"Type": "MEMORY", "Value": "2048"}]
    ]
    log = (pipeline.aws.log_dir / "batch" / f"{ex.output['convert']['jobId']}.log").read_text()
    finished = [json.loads(line) for line in log.splitlines() if "batch job finished" in line]
    assert [f["cores"] for f in finished] == [1]


def test_invalid_file_is_quarantined_with_a_report(pipeline: Pipeline) -> None:
    # GIVEN a CSV whose second row has too many fields
    key = "bad/ragged.csv"
    body = b"a,b\n1,2\n3,4,5\n"
    # WHEN it is processed
    pipeline.put(key, body)
    ex = pipeline.wait_for(key)
    # THEN the execution fails with the permanent error's name and the file is in quarantine
    assert ex.status == "FAILED"
    assert ex.error == "MalformedContent"
    assert pipeline.read(pipeline.r.quarantine_bucket, key) == body
    report = json.loads(pipeline.read(pipeline.r.quarantine_bucket, key + ".error.json"))
    assert report["error"] == "MalformedContent"
    assert report["failedState"] == "ConvertInLambda"
    assert report["execution"] == ex.name
    # AND the completion message names the error and the quarantine location
    (message,) = wait_until(lambda: pipeline.completion_for(key), what="completion message")
    assert message["status"] == "QUARANTINED"
    assert message["error"] == "MalformedContent"
    assert message["failedState"] == "ConvertInLambda"
    assert message["quarantine"]["bucket"] == pipeline.r.quarantine_bucket
    assert message["quarantine"]["reportKey"] == key + ".error.json"
    assert key not in pipeline.keys(pipeline.r.staging_bucket)
    # permanent errors are never retried
    assert _task_failures(pipeline.history(ex.arn)).count("MalformedContent") == 1


def test_empty_file_is_rejected_by_validate(pipeline: Pipeline) -> None:
    key = "bad/EMPTY.CSV"
    pipeline.put(key, b"")
    ex = pipeline.wait_for(key)
    assert ex.error == "InvalidFile"
    report = json.loads(pipeline.read(pipeline.r.quarantine_bucket, key + ".error.json"))
    assert report["failedState"] == "Validate"
    assert "ConvertInLambda" not in _entered(pipeline.history(ex.arn))


def test_transient_error_is_retried_then_succeeds(pipeline: Pipeline, embedded) -> None:
    # GIVEN the convert step will fail once with a transient error
    embedded.inject_fault("convert", "StorageUnavailable", times=1)
    key = "retry/once.csv"
    # WHEN a file is processed
    pipeline.put(key, SMALL_CSV)
    ex = pipeline.wait_for(key)
    # THEN the history shows the failure and the retry, and the execution succeeds
    assert ex.status == "SUCCEEDED", ex.cause
    history = pipeline.history(ex.arn)
    assert _task_failures(history) == ["StorageUnavailable"]
    assert _entered(history).count("ConvertInLambda") == 1
    convert_calls = [
        e
        for e in history
        if e["type"] == "TaskScheduled"
        and "chute-convert" in e["taskScheduledEventDetails"]["parameters"]
    ]
    assert len(convert_calls) == 2


def test_a_lambda_worker_that_cannot_be_started_is_retried_as_lambdas_failure(
    pipeline: Pipeline, embedded: EmbeddedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Validate step's next worker can't be started (no idle one to take)
    workers = embedded._workers
    assert workers is not None
    real, failures = workers._spawn, [1]

    def spawn(spec: Any) -> Any:
        if failures[0] and spec.name.endswith("-validate"):
            failures[0] -= 1
            raise OSError(11, "Resource temporarily unavailable")
        return real(spec)

    monkeypatch.setattr(workers, "_spawn", spawn)
    monkeypatch.setattr(workers, "_take_idle", lambda pool: None)
    key = "retry/no-worker.csv"
    # WHEN a file is processed
    pipeline.put(key, SMALL_CSV)
    ex = pipeline.wait_for(key)
    # THEN Lambda's own failure is in the history, retried, and the file went through
    assert ex.status == "SUCCEEDED", ex.cause
    assert _task_failures(pipeline.history(ex.arn)) == ["Lambda.ServiceException"]
    assert failures == [0]


def test_transient_errors_exhausted_leave_the_file_in_staging(pipeline: Pipeline, embedded) -> None:
    # GIVEN the convert step keeps failing transiently (more than MaxAttempts)
    embedded.inject_fault("convert", "StorageUnavailable", times=5)
    key = "retry/exhausted.csv"
    pipeline.put(key, SMALL_CSV)
    ex = pipeline.wait_for(key)
    # THEN the execution FAILED with that error and the file is still in staging, rerunnable
    assert ex.status == "FAILED"
    assert ex.error == "StorageUnavailable"
    assert _task_failures(pipeline.history(ex.arn)).count("StorageUnavailable") == 5
    assert key in pipeline.keys(pipeline.r.staging_bucket)
    assert key not in pipeline.keys(pipeline.r.quarantine_bucket)
    # no completion message: the file isn't done, it waits for a rerun
    assert pipeline.completion_for(key) == []


def test_batch_transient_exit_is_retried_by_batch_then_fails_without_quarantine(
    pipeline: Pipeline, embedded
) -> None:
    # GIVEN every Batch attempt exits 75 (transient)
    embedded.inject_batch_exit(75, times=3)
    key = "batchfail/transient.csv"
    pipeline.put(key, b"a,b\n" + b"1,2\n" * 1000)
    ex = pipeline.wait_for(key)
    # THEN Batch retried (3 attempts), the workflow failed, the file stayed in staging
    assert ex.status == "FAILED"
    assert ex.error == "States.TaskFailed"
    job = json.loads(ex.cause or "{}")
    assert job["Container"]["ExitCode"] == 75
    assert len(job["Attempts"]) == 3
    assert key in pipeline.keys(pipeline.r.staging_bucket)


def test_batch_permanent_exit_quarantines(pipeline: Pipeline) -> None:
    # GIVEN a large file with a ragged row: the Batch job exits 65
    key = "batchfail/ragged.csv"
    body = b"a,b\n" + b"1,2\n" * 1000 + b"1,2,3\n"
    pipeline.put(key, body)
    ex = pipeline.wait_for(key)
    # THEN the file is quarantined, after a single attempt (permanent errors aren't retried)
    assert ex.status == "FAILED"
    assert ex.route == "batch"
    assert ex.error == "States.TaskFailed"
    job = json.loads(ex.cause or "{}")
    assert job["Container"]["ExitCode"] == 65
    assert len(job["Attempts"]) == 1
    report = json.loads(pipeline.read(pipeline.r.quarantine_bucket, key + ".error.json"))
    assert report["failedState"] == "ConvertInBatch"
    # and the report names the job's own error, as on the Lambda route; nothing left behind
    assert report["error"] == "MalformedContent"
    assert "row 1002" in report["message"]
    # AND the report summarises the job (id, status, exit codes) without its environment or paths
    summary = json.loads(report["cause"])
    assert summary["jobId"] == job["JobId"]
    assert (summary["exitCode"], summary["attemptExitCodes"]) == (65, [65])
    assert "Environment" not in report["cause"] and "Traceback" not in json.dumps(report)
    left = pipeline.keys(pipeline.r.output_bucket)
    assert not [k for k in left if k.startswith(keys.BATCH_FAILURES_PREFIX)]


def test_duplicate_event_delivery_starts_one_execution(pipeline: Pipeline, embedded) -> None:
    # GIVEN a file whose event is delivered twice (S3 delivers at least once)
    key = "dup/twice.csv"
    pipeline.put(key, SMALL_CSV)
    first = pipeline.wait_for(key)
    history = pipeline.history(first.arn)
    started = json.loads(history[0]["executionStartedEventDetails"]["input"])["source"]
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": started["bucket"]},
                    "object": {
                        "key": "dup/twice.csv",
                        "size": started["size"],
                        "eTag": started["eTag"],
                        "versionId": started.get("versionId"),
                        "sequencer": started["sequencer"],
                    },
                },
            }
        ]
    }
    # WHEN the same event arrives again
    pipeline.sqs.send_message(QueueUrl=embedded.queue_url(), MessageBody=json.dumps(event))
    # THEN the queue drains and there is still exactly one execution
    wait_until(lambda: _queue_empty(pipeline, embedded), what="queue drained")
    assert len(pipeline.executions_for(key)) == 1


def test_multipart_upload_starts_exactly_one_execution(pipeline: Pipeline, embedded) -> None:
    # GIVEN a multipart upload (two parts)
    key = "multi/parts.csv"
    s3 = pipeline.s3
    upload = s3.create_multipart_upload(Bucket=pipeline.r.staging_bucket, Key=key)
    part1 = b"a,b\n" + b"1,2\n" * (5 * 1024 * 1024 // 4)
    part2 = b"3,4\n"
    etags = []
    for number, body in ((1, part1), (2, part2)):
        resp = s3.upload_part(
            Bucket=pipeline.r.staging_bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body,
        )
        etags.append({"PartNumber": number, "ETag": resp["ETag"]})
    # WHEN it completes
    s3.complete_multipart_upload(
        Bucket=pipeline.r.staging_bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": etags},
    )
    ex = pipeline.wait_for(key, timeout=120)
    wait_until(lambda: _queue_empty(pipeline, embedded), what="queue drained")
    # THEN exactly one execution ran, and it succeeded on the Batch route
    assert len(pipeline.executions_for(key)) == 1
    assert ex.status == "SUCCEEDED", ex.cause
    assert ex.route == "batch"


def test_unprocessable_message_ends_in_the_dlq(pipeline: Pipeline, embedded) -> None:
    # GIVEN a message the trigger can't parse
    pipeline.sqs.send_message(QueueUrl=embedded.queue_url(), MessageBody="not json")
    dlq = embedded.queue_url(embedded.resources.dlq_name)

    # THEN after maxReceiveCount deliveries it is in the DLQ, not dropped
    def in_dlq() -> list[dict]:
        resp = pipeline.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)
        return [m for m in resp.get("Messages", []) if m["Body"] == "not json"]

    assert wait_until(in_dlq, timeout=30, what="message in the DLQ")


def _queue_empty(pipeline: Pipeline, embedded) -> bool:
    attrs = pipeline.sqs.get_queue_attributes(
        QueueUrl=embedded.queue_url(),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        attrs["ApproximateNumberOfMessages"] == "0"
        and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
    )


# --- data contracts (contracts/contracts.toml, loaded by the embedded runtime) ------------------
READINGS_HEADER = "device_id\trecorded_at\tchannel\ttemperature_c\tbattery_ok\tstatus\n"


def test_contract_types_the_output(pipeline: Pipeline) -> None:
    # GIVEN a device upload matching the device-readings contract (Parquet only)
    key = "devices/AB-123456/2026-11-23.tsv"
    body = READINGS_HEADER + (
        "AB-123456\t2026-11-23T10:00:00Z\t1\t21.5\ttrue\tok\n"
        "AB-123456\t2026-11-23T10:05:00+01:00\t2\t\tno\tdegraded\n"
    )
    pipeline.put(key, body.encode())
    ex = pipeline.wait_for(key)
    # THEN the Parquet output is typed per the contract
    assert ex.status == "SUCCEEDED", ex.cause
    assert ex.output is not None
    assert ex.output["output"]["contract"] == "device-readings"
    assert ex.output["output"]["formats"] == ["parquet"]
    table = pq.read_table(io.BytesIO(pipeline.read(pipeline.r.output_bucket, key + ".parquet")))
    assert str(table.schema.field("channel").type) == "int64"
    assert str(table.schema.field("recorded_at").type).startswith("timestamp[us")
    rows = table.to_pylist()
    assert rows[1]["channel"] == 2 and rows[1]["battery_ok"] is False
    assert rows[1]["temperature_c"] is None
    assert rows[1]["recorded_at"].isoformat() == "2026-11-23T09:05:00+00:00"


@pytest.mark.parametrize(("route", "good_rows"), [("lambda", 1), ("batch", 60)])
def test_contract_violation_is_quarantined_with_the_problems(
    pipeline: Pipeline, route: str, good_rows: int
) -> None:
    # GIVEN a device upload with a bad channel after its good rows (60 rows: the Batch route)
    key = f"devices/AB-123456/broken-{route}.tsv"
    body = READINGS_HEADER + (
        "AB-123456\t2026-11-23T10:00:00Z\t1\t21.5\ttrue\tok\n" * good_rows
        + "AB-123456\t2026-11-23T10:05:00Z\t9\t20.0\ttrue\tok\n"
    )
    pipeline.put(key, body.encode())
    ex = pipeline.wait_for(key)
    # THEN it is quarantined and the report names the error, row, column, value and reason
    assert ex.route == route and ex.status == "FAILED"
    report = json.loads(pipeline.read(pipeline.r.quarantine_bucket, key + ".error.json"))
    assert report["error"] == "ContractViolation"
    problems = report["contract"]["problems"]
    assert problems[0]["row"] == good_rows + 2
    assert problems[0]["column"] == "channel"
    assert problems[0]["value"] == "9"
    assert problems[0]["reason"] == "not an allowed value"
    # AND no partial output is left behind
    assert not [k for k in pipeline.keys(pipeline.r.output_bucket) if "broken" in k]


def test_every_step_logs_json_with_the_execution_and_the_key(pipeline: Pipeline, embedded) -> None:
    # GIVEN a file through the Lambda route
    key = "logs/correlated.csv"
    pipeline.put(key, SMALL_CSV)
    ex = pipeline.wait_for(key)
    assert ex.status == "SUCCEEDED", ex.cause
    # THEN each step's log lines for it are JSON carrying the execution name and the file key
    for step in ("validate", "convert", "archive"):
        path = embedded.log_dir / f"{embedded.resources.function_name(step)}.log"
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
        mine = [line for line in lines if line.get("execution") == ex.name and "message" in line]
        assert mine, step
        assert all(line["key"] == key for line in mine), step
