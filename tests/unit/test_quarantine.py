"""Quarantine: move a rejected original aside with a <key>.error.json report; never crash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tasks.adapters.s3 import S3Store
from tasks.formats.keys import batch_failure_key
from tasks.models import ObjectRef
from tasks.quarantine import handler as quarantine_handler
from tasks.quarantine.domain import MAX_CAUSE_BYTES, JobFailure, quarantine, truncate_utf8
from tasks.settings import QuarantineSettings
from tests.support.unit import KEYS, OUTPUT, QUARANTINE, STAGING, fresh, put

SETTINGS = QuarantineSettings(quarantine_bucket=QUARANTINE)
NOW = datetime(2024, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)
BODY = b"id;name\n1;alice\n"


def stage(s3: Any, key: str, body: bytes = BODY) -> ObjectRef:
    """Stage an object; the ObjectRef the trigger would have announced for it."""
    return put(s3, key, body)


def run(store: S3Store, source: ObjectRef, cause: str = "duplicate column names") -> dict[str, str]:
    return quarantine(
        source,
        "InvalidFile",
        cause,
        "Validate",
        "orders-csv-0123",
        store,
        SETTINGS,
        now=NOW,
    )


def report(s3: Any, key: str) -> dict[str, Any]:
    body = s3.get_object(Bucket=QUARANTINE, Key=f"{key}.error.json")["Body"].read()
    document: dict[str, Any] = json.loads(body)
    return document


def keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


@pytest.mark.parametrize("key", KEYS)
def test_quarantine_moves_the_original_and_writes_a_report(
    s3: Any, store: S3Store, key: str
) -> None:
    # GIVEN a rejected file in staging
    source = stage(s3, key)

    # WHEN quarantined
    result = run(store, source)

    # THEN the original sits in quarantine under its key, beside its report, and left staging
    assert result == {"bucket": QUARANTINE, "key": key, "reportKey": f"{key}.error.json"}
    assert s3.get_object(Bucket=QUARANTINE, Key=key)["Body"].read() == BODY
    assert keys(s3, QUARANTINE) == sorted([key, f"{key}.error.json"])
    assert keys(s3, STAGING) == []
    assert report(s3, key) == {
        "error": "InvalidFile",
        "message": None,
        "cause": "duplicate column names",
        "causeTruncated": False,
        "causeBytes": 22,
        "failedState": "Validate",
        "execution": "orders-csv-0123",
        "time": "2024-03-14T09:26:53.589Z",
        "source": source.to_dict(),
        "file": {
            "status": "quarantined",
            "note": "the original is stored beside this report",
            "bucket": QUARANTINE,
            "key": key,
        },
    }


def test_the_report_is_json_content(s3: Any, store: S3Store) -> None:
    run(store, stage(s3, "incoming/x.csv"))
    head = s3.head_object(Bucket=QUARANTINE, Key="incoming/x.csv.error.json")
    assert head["ContentType"] == "application/json"


def test_quarantine_twice_rewrites_the_report_only(s3: Any, store: S3Store) -> None:
    # GIVEN a file already quarantined (the step is retried after a lost response)
    source = stage(s3, "incoming/x.csv")
    first = run(store, source)

    # WHEN quarantined again
    second = run(store, source, cause="second attempt")

    # THEN same answer, the copy is intact and the report is rewritten
    assert second == first
    assert s3.get_object(Bucket=QUARANTINE, Key="incoming/x.csv")["Body"].read() == BODY
    assert report(s3, "incoming/x.csv")["cause"] == "second attempt"
    assert report(s3, "incoming/x.csv")["file"]["status"] == "quarantined"


def test_a_file_gone_everywhere_still_gets_a_report(s3: Any, store: S3Store) -> None:
    # GIVEN the original vanished and was never copied
    source = ObjectRef(bucket=STAGING, key="incoming/gone.csv", size=3, etag="abc")

    # WHEN quarantined  THEN no crash, and the report says the file was not found
    result = run(store, source)

    assert result["reportKey"] == "incoming/gone.csv.error.json"
    assert keys(s3, QUARANTINE) == ["incoming/gone.csv.error.json"]
    assert report(s3, "incoming/gone.csv")["file"] == {
        "status": "not_found",
        "note": "the original was not found in staging nor in quarantine",
        "bucket": None,
        "key": None,
    }


def test_a_replaced_original_is_left_in_staging(s3: Any, store: S3Store) -> None:
    # GIVEN the rejected upload was overwritten by a new one before quarantine ran
    source = stage(s3, "incoming/x.csv")
    s3.put_object(Bucket=STAGING, Key="incoming/x.csv", Body=b"a,b\nfixed\n")

    # WHEN quarantined  THEN the new upload is untouched and the report says why
    run(store, source)

    assert s3.get_object(Bucket=STAGING, Key="incoming/x.csv")["Body"].read() == b"a,b\nfixed\n"
    assert keys(s3, QUARANTINE) == ["incoming/x.csv.error.json"]
    assert report(s3, "incoming/x.csv")["file"]["status"] == "changed"


def test_a_huge_cause_is_truncated(s3: Any, store: S3Store) -> None:
    # GIVEN a 1 MB cause
    cause = "é" * 500_000

    run(store, stage(s3, "incoming/x.csv"), cause=cause)

    # THEN the report keeps 32 KiB of it, says so, and stays valid UTF-8 JSON
    document = report(s3, "incoming/x.csv")
    assert document["causeTruncated"] is True
    assert document["causeBytes"] == 1_000_000
    assert document["cause"] == "é" * (MAX_CAUSE_BYTES // 2)


def test_the_message_of_a_lambda_error_cause_is_extracted(s3: Any, store: S3Store) -> None:
    cause = json.dumps(
        {
            "errorMessage": "s3://chute-staging/incoming/x.csv: the file is empty (0 bytes)",
            "errorType": "InvalidFile",
            "requestId": "1b2c",
            "stackTrace": ['  File "/var/task/tasks/validate/domain.py", line 42\n'],
        }
    )
    run(store, stage(s3, "incoming/x.csv"), cause=cause)

    document = report(s3, "incoming/x.csv")
    assert document["message"] == "s3://chute-staging/incoming/x.csv: the file is empty (0 bytes)"
    # AND the cause keeps the error's type and message, never its stack trace or paths
    assert json.loads(document["cause"]) == {
        "errorType": "InvalidFile",
        "errorMessage": "s3://chute-staging/incoming/x.csv: the file is empty (0 bytes)",
    }
    assert "/var/task" not in json.dumps(document)


BATCH_CAUSE = json.dumps(
    {
        "JobId": "j-1",
        "Status": "FAILED",
        "Container": {
            "ExitCode": 65,
            "Command": ["python", "-m", "batch"],
            "Environment": [{"Name": "CHUTE_CONTRACTS_FILE", "Value": "/home/me/contracts.toml"}],
        },
        "Attempts": [{"Container": {"ExitCode": 65, "LogStreamName": "chute/default/1"}}],
    }
)
BATCH_SUMMARY = json.dumps(
    {"jobId": "j-1", "status": "FAILED", "exitCode": 65, "attempts": 1, "attemptExitCodes": [65]}
)
PROBLEMS = {
    "contract": "orders",
    "problemCount": 1,
    "badRows": 1,
    "problems": [{"row": 3, "column": "id", "value": "x", "reason": "not a valid int"}],
}


# where the workflow's BatchConvertRejected state says the job left its error
JOB_FAILURE = JobFailure(bucket=OUTPUT, key=batch_failure_key("orders-csv-0123"))


def quarantine_batch_rejection(
    store: S3Store,
    source: ObjectRef,
    job_failure: JobFailure | None = JOB_FAILURE,
    failed_state: str = "ConvertInBatch",
) -> None:
    quarantine(
        source,
        "States.TaskFailed",
        BATCH_CAUSE,
        failed_state,
        "orders-csv-0123",
        store,
        QuarantineSettings(quarantine_bucket=QUARANTINE, output_bucket=OUTPUT),
        now=NOW,
        job_failure=job_failure,
    )


def leave_job_failure(s3: Any, key: str = JOB_FAILURE.key) -> None:
    left = {"error": "ContractViolation", "cause": json.dumps(PROBLEMS), "exitCode": 65}
    s3.put_object(Bucket=OUTPUT, Key=key, Body=json.dumps(left).encode())


def test_a_batch_rejection_is_reported_with_the_error_the_job_left(s3: Any, store: S3Store) -> None:
    # GIVEN a Batch job rejected the file and left its ContractViolation (batch/entrypoint.py)
    leave_job_failure(s3)
    # WHEN quarantined (the workflow's error is the job description, jobFailure where it is)
    quarantine_batch_rejection(store, stage(s3, "big/orders.csv"))
    # THEN the report names the job's error with its problems, and keeps the job description
    document = report(s3, "big/orders.csv")
    assert document["error"] == "ContractViolation"
    assert document["contract"] == PROBLEMS
    assert document["cause"] == BATCH_SUMMARY
    assert "/home/me" not in json.dumps(document)
    assert document["failedState"] == "ConvertInBatch"
    # and what the job left is gone
    assert keys(s3, OUTPUT) == []


def test_a_batch_rejection_without_what_the_job_left_keeps_the_job_description(
    s3: Any, store: S3Store
) -> None:
    # e.g. the job could not write it, or a retry of this step already deleted it
    quarantine_batch_rejection(store, stage(s3, "big/orders.csv"))
    document = report(s3, "big/orders.csv")
    assert (document["error"], document["cause"]) == ("States.TaskFailed", BATCH_SUMMARY)
    assert "contract" not in document


def test_the_job_failure_is_read_where_the_workflow_says_not_by_state_name(
    s3: Any, store: S3Store
) -> None:
    # GIVEN what a job left, at a location the workflow passes (any key in the output bucket)
    leave_job_failure(s3, "_chute/elsewhere/x.json")
    # WHEN quarantined with that location, whatever the failed state is called
    where = JobFailure(bucket=OUTPUT, key="_chute/elsewhere/x.json")
    quarantine_batch_rejection(store, stage(s3, "big/orders.csv"), where, "SomeOtherState")
    # THEN the report names the job's error, and the document is gone
    assert report(s3, "big/orders.csv")["contract"] == PROBLEMS
    assert keys(s3, OUTPUT) == []


def test_without_a_job_failure_nothing_is_read_even_from_convert_in_batch(
    s3: Any, store: S3Store
) -> None:
    # GIVEN a document at the usual place, but the workflow passes no location (jobFailure null)
    leave_job_failure(s3)
    # WHEN quarantined
    quarantine_batch_rejection(store, stage(s3, "big/orders.csv"), None)
    # THEN the report keeps the job description and the document is left alone
    assert report(s3, "big/orders.csv")["error"] == "States.TaskFailed"
    assert keys(s3, OUTPUT) == [JOB_FAILURE.key]


def test_a_job_failure_outside_the_output_bucket_is_not_read(s3: Any, store: S3Store) -> None:
    # GIVEN a location in a bucket the function was not given (it may not read there)
    s3.put_object(Bucket=STAGING, Key="x.json", Body=b'{"error": "Oops", "cause": "c"}')
    # WHEN quarantined
    outside = JobFailure(bucket=STAGING, key="x.json")
    quarantine_batch_rejection(store, stage(s3, "big/orders.csv"), outside)
    # THEN the report keeps the job description and nothing is deleted
    assert report(s3, "big/orders.csv")["error"] == "States.TaskFailed"
    assert "x.json" in keys(s3, STAGING)


def test_the_time_is_utc(s3: Any, store: S3Store) -> None:
    local = datetime(2024, 3, 14, 11, 26, 53, tzinfo=timezone(timedelta(hours=2)))
    quarantine(stage(s3, "incoming/x.csv"), "E", "c", "S", "x", store, SETTINGS, now=local)
    assert report(s3, "incoming/x.csv")["time"] == "2024-03-14T09:26:53.000Z"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("abc", 3, ("abc", False)),
        ("abcd", 3, ("abc", True)),
        ("aé", 2, ("a", True)),  # never half a character
        ("€€", 5, ("€", True)),
    ],
)
def test_truncate_utf8(text: str, limit: int, expected: tuple[str, bool]) -> None:
    assert truncate_utf8(text, limit) == expected


# --- handler ------------------------------------------------------------------------------------
@pytest.fixture
def env(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CHUTE_QUARANTINE_BUCKET", QUARANTINE)
    with fresh():
        yield


def test_handler_takes_the_catch_output(s3: Any, env: None) -> None:
    # GIVEN the state machine's input to Quarantine after a Catch
    source = stage(s3, "incoming/déjà vu/DATA.CSV")
    event = {
        "source": source.to_dict(),
        "error": {"Error": "UnsupportedFormat", "Cause": '{"errorMessage": "bad suffix"}'},
        "failedState": "Validate",
        "execution": "DATA-CSV-0123",
    }

    # WHEN the handler runs
    result = quarantine_handler.handler(event, None)

    # THEN the documented shape comes back and the report carries the error
    assert result == {
        "bucket": QUARANTINE,
        "key": "incoming/déjà vu/DATA.CSV",
        "reportKey": "incoming/déjà vu/DATA.CSV.error.json",
    }
    document = report(s3, "incoming/déjà vu/DATA.CSV")
    assert (document["error"], document["message"], document["execution"]) == (
        "UnsupportedFormat",
        "bad suffix",
        "DATA-CSV-0123",
    )


def test_handler_reads_the_job_failure_the_workflow_passes(
    s3: Any, env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Batch rejection's input to Quarantine: jobFailure says where the job left its error
    monkeypatch.setenv("CHUTE_OUTPUT_BUCKET", OUTPUT)
    leave_job_failure(s3)
    event = {
        "source": stage(s3, "big/orders.csv").to_dict(),
        "error": {"Error": "States.TaskFailed", "Cause": BATCH_CAUSE},
        "failedState": "ConvertInBatch",
        "jobFailure": {"bucket": OUTPUT, "key": JOB_FAILURE.key},
        "execution": "orders-csv-0123",
    }
    # WHEN the handler runs
    quarantine_handler.handler(event, None)
    # THEN the report names the job's own error
    assert report(s3, "big/orders.csv")["error"] == "ContractViolation"


@pytest.mark.parametrize("job_failure", ["s3://x/y", {"bucket": OUTPUT}, {"key": 1}, []])
def test_handler_quarantines_despite_a_malformed_job_failure(
    s3: Any, env: None, job_failure: Any
) -> None:
    event = {
        "source": stage(s3, "big/orders.csv").to_dict(),
        "error": {"Error": "States.TaskFailed", "Cause": BATCH_CAUSE},
        "failedState": "ConvertInBatch",
        "jobFailure": job_failure,
        "execution": "orders-csv-0123",
    }
    quarantine_handler.handler(event, None)
    assert report(s3, "big/orders.csv")["error"] == "States.TaskFailed"


def test_handler_tolerates_an_error_without_cause(s3: Any, env: None) -> None:
    source = stage(s3, "incoming/x.csv")
    event = {"source": source.to_dict(), "error": {"Error": "States.Timeout"}, "execution": "x"}

    quarantine_handler.handler(event, None)

    document = report(s3, "incoming/x.csv")
    assert (document["error"], document["cause"], document["failedState"]) == (
        "States.Timeout",
        "",
        "unknown",
    )


# --- the report's cause: no stack trace, no local path ------------------------------------------
def test_a_lambda_cause_loses_its_stack_trace() -> None:
    from tasks.quarantine.domain import public_cause

    cause = json.dumps(
        {
            "errorType": "MalformedContent",
            "errorMessage": "row 2: expected 2 fields",
            "requestId": "r-1",
            "stackTrace": ['  File "/var/task/tasks/convert/engine.py", line 1, in x\n'],
        }
    )
    assert json.loads(public_cause(cause)) == {
        "errorType": "MalformedContent",
        "errorMessage": "row 2: expected 2 fields",
    }


def test_a_batch_cause_keeps_the_exit_code_not_the_environment() -> None:
    from tasks.quarantine.domain import public_cause

    container = {
        "ExitCode": 65,
        "LogStreamName": "chute-convert/default/1",
        "Command": ["python", "-m", "batch"],
        "Environment": [{"Name": "CHUTE_CONTRACTS_FILE", "Value": "/home/me/contracts.toml"}],
    }
    cause = json.dumps({"JobId": "1", "Status": "FAILED", "Container": container})
    public = public_cause(cause)
    assert json.loads(public) == {
        "jobId": "1",
        "status": "FAILED",
        "exitCode": 65,
        "logStreamName": "chute-convert/default/1",
    }
    assert "/home/me" not in public


@pytest.mark.parametrize("cause", ["plain text", "{not json", "[1, 2]", '{"other": 1}'])
def test_other_causes_are_kept_as_they_are(cause: str) -> None:
    from tasks.quarantine.domain import public_cause

    assert public_cause(cause) == cause
