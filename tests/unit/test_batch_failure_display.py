"""A Batch failure as `chute show` tells it (issue 12 item 9): exit code, reason, the attempts
Batch made and the log stream, from the DescribeJobs document Step Functions passes on as the
cause of States.TaskFailed — not 5,000 characters of JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from chute.ops import operate


def _describe_jobs(attempts: int) -> str:
    attempt = {
        "Container": {
            "ExitCode": 137,
            "Reason": "OutOfMemoryError: Container killed due to memory usage",
            "LogStreamName": "chute-convert/default/abc123",
        },
        "StartedAt": 1,
        "StoppedAt": 2,
    }
    return json.dumps(
        {
            "JobId": "4e7f-job",
            "JobName": "convert-big.csv",
            "Status": "FAILED",
            "StatusReason": "Essential container in task exited",
            "Attempts": [attempt] * attempts,
            "Container": attempt["Container"],
            "RetryStrategy": {"Attempts": 3},
            "Padding": "x" * 5000,
        }
    )


def test_a_failed_job_reports_exit_code_reason_attempts_and_log_stream() -> None:
    # GIVEN the ConvertInBatch state and the cause of its States.TaskFailed after 3 attempts
    state = operate.StateRun("ConvertInBatch", datetime(2026, 12, 3, tzinfo=UTC), attempts=1)
    # WHEN the document is read
    operate._batch_details(state, _describe_jobs(3))
    # THEN the job's facts are kept, and summarized in one line
    assert (state.batch_job_id, state.batch_exit_code, state.batch_attempts) == ("4e7f-job", 137, 3)
    assert state.log_stream == "chute-convert/default/abc123"
    summary = operate.batch_summary(state)
    assert summary == (
        "job 4e7f-job: exit 137 (OutOfMemoryError: Container killed due to memory usage),"
        " 3 attempts, log chute-convert/default/abc123"
    )
    assert summary is not None and len(summary) < 200


def test_a_document_without_a_job_is_left_alone() -> None:
    state = operate.StateRun("ConvertInBatch", datetime(2026, 12, 3, tzinfo=UTC))
    operate._batch_details(state, '{"Error": "States.Timeout"}')
    operate._batch_details(state, "not json")
    assert state.batch_job_id is None and operate.batch_summary(state) is None
