"""Faults (issue 10): S3 errors, a killed Lambda worker, a killed or stopped Batch job, injected
step errors and exit codes, armed with the same rules operators pass to `chute up --fault`.

After every fault, each file is accounted for (tests/support/accounting.py): archived with its
output, quarantined with its report, or FAILED and still in staging, rerunnable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chute.local.embedded import EmbeddedAws
from chute.ops import operate
from chute.ops.deployment import connect
from tasks.formats.keys import output_base
from tasks.workflow import rerun_name
from tests.support.accounting import assert_accounted
from tests.support.pipeline import LARGE_THRESHOLD, Pipeline, wait_until

SMALL = b"id,name\n1,Ann\n2,Bob\n"


@pytest.fixture(autouse=True)
def no_leftover_faults(embedded: EmbeddedAws) -> Iterator[None]:
    """Each test arms its own rules; none survive it (the runtime is shared)."""
    embedded.faults.clear()
    yield
    embedded.faults.clear()


def _task_failures(pipeline: Pipeline, arn: str) -> list[str]:
    return [
        e["taskFailedEventDetails"]["error"]
        for e in pipeline.history(arn)
        if "taskFailedEventDetails" in e
    ]


def _fired(embedded: EmbeddedAws, rule: str) -> list[str]:
    """What ``rule`` (exactly: not a longer rule it begins) did in this session."""
    return embedded.faults.fired(rule + ": ")


def _uploads(pipeline: Pipeline, prefix: str) -> list[dict[str, Any]]:
    resp = pipeline.s3.list_multipart_uploads(Bucket=pipeline.r.output_bucket, Prefix=prefix)
    return list(resp.get("Uploads", []))


def _large_csv(rows: int) -> bytes:
    """A CSV above the routing threshold whose JSON Lines output is larger than one 8 MiB part,
    so the Batch job writes it with a multipart upload."""
    lines = [b"n,name,value,comment"]
    lines += [
        f"{i},name-{i},{i * 1.5},some text to make the row longer".encode() for i in range(rows)
    ]
    return b"\n".join(lines) + b"\n"


# --- S3 errors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("step", "rule", "function"),
    [
        ("validate", "s3:GetObject:503:2:{key}", "validate"),
        ("convert", "s3:PutObject:500:2:{base}.", "convert"),
        ("archive", "s3:DeleteObject:503:2:{key}", "archive"),
    ],
)
def test_s3_throttling_and_5xx_in_a_step_are_retried_and_the_file_succeeds(
    pipeline: Pipeline, embedded: EmbeddedAws, step: str, rule: str, function: str
) -> None:
    # GIVEN the endpoint answers 2 requests of the step's S3 operation with SlowDown/InternalError
    key = f"faults/s3-{step}.csv"
    rule = rule.format(key=key, base=output_base(key))
    embedded.faults.add(rule)
    # WHEN a file is processed
    pipeline.put(key, SMALL)
    ex = pipeline.wait_for(key)
    # THEN the step's client saw the errors (real HTTP answers) and retried them: SUCCEEDED
    fired = _fired(embedded, rule)
    assert len(fired) == 2, fired
    assert all(line.endswith(f"by {embedded.resources.function_name(function)}") for line in fired)
    assert ex.status == "SUCCEEDED", ex.cause
    assert assert_accounted(pipeline, [key]) == {key: "archived"}


def test_s3_errors_beyond_the_sdk_retries_fail_the_step_and_the_workflow_retries_it(
    pipeline: Pipeline, embedded: EmbeddedAws
) -> None:
    # GIVEN more SlowDowns on the convert output than the SDK absorbs (1 + 5 retries)
    key = "faults/s3-outlasting.csv"
    rule = f"s3:PutObject:503:6:{output_base(key)}."
    embedded.faults.add(rule)
    # WHEN a file is processed
    pipeline.put(key, SMALL)
    ex = pipeline.wait_for(key, timeout=90)
    # THEN convert failed once with the named transient error, the state machine retried it
    assert len(_fired(embedded, rule)) == 6
    assert _task_failures(pipeline, ex.arn) == ["StorageUnavailable"]
    assert ex.status == "SUCCEEDED", ex.cause
    assert assert_accounted(pipeline, [key]) == {key: "archived"}


# --- a Lambda worker killed ------------------------------------------------------------------
def test_a_lambda_worker_killed_mid_conversion_is_retried_and_the_file_succeeds(
    pipeline: Pipeline, embedded: EmbeddedAws
) -> None:
    # GIVEN the convert worker gets SIGKILL at its first S3 request of the next invocation
    embedded.faults.add("lambda:convert:kill")
    key = "faults/killed-worker.csv"
    # WHEN a file is processed
    pipeline.put(key, SMALL)
    ex = pipeline.wait_for(key)
    # THEN the workflow saw a named error (as on AWS), retried it on a new worker, and succeeded
    fired = _fired(embedded, "lambda:convert:kill")
    assert len(fired) == 1 and "SIGKILL" in fired[0], fired
    assert _task_failures(pipeline, ex.arn) == ["Runtime.ExitError"]
    assert ex.status == "SUCCEEDED", ex.cause
    assert assert_accounted(pipeline, [key]) == {key: "archived"}
    assert pipeline.jsonl(pipeline.r.output_bucket, output_base(key) + ".jsonl") == [
        {"id": 1, "name": "Ann"},
        {"id": 2, "name": "Bob"},
    ]


# --- a Batch job killed or stopped -----------------------------------------------------------
def test_a_batch_job_killed_mid_upload_fails_rerunnable_and_its_upload_stays_until_lifecycle(
    pipeline: Pipeline, embedded: EmbeddedAws
) -> None:
    # GIVEN a large file, and the Batch job gets SIGKILL when it uploads its first output part
    key = "faults/killed-job.csv"
    body = _large_csv(150_000)
    assert len(body) >= LARGE_THRESHOLD
    # a signal rule fires on any job's request: arm it once no earlier test's job still runs
    wait_until(lambda: embedded.batch_jobs_running() == 0, what="earlier Batch jobs ended")
    embedded.faults.add("batch:kill")
    # WHEN it is processed
    pipeline.put(key, body)
    ex = pipeline.wait_for(key, timeout=120)
    # THEN the job exited 137 (128 + SIGKILL) on its single attempt (not a retried code), the
    # workflow FAILED, and the file is still in staging: rerunnable, not lost
    assert len(_fired(embedded, "batch:kill")) == 1
    assert ex.route == "batch"
    assert ex.status == "FAILED"
    job = json.loads(ex.cause or "{}")
    assert job["Container"]["ExitCode"] == 137
    assert len(job["Attempts"]) == 1
    assert assert_accounted(pipeline, [key]) == {key: "failed"}
    # AND a killed process can't abort its multipart upload: it stays incomplete (invisible to
    # readers: no output object), until the output bucket's AbortIncompleteMultipartUpload rule
    left = _uploads(pipeline, output_base(key))
    assert len(left) == 1
    assert output_base(key) + ".jsonl" not in pipeline.keys(pipeline.r.output_bucket)
    # WHEN the operator reruns it
    (result,) = operate.rerun(connect(endpoint_url=embedded.endpoint_url), [ex.arn])
    assert result.action == "restarted"
    rerun_arn = ex.arn.rsplit(":", 1)[0] + ":" + rerun_name(ex.name)

    def finished() -> str | None:
        status = str(pipeline.sfn.describe_execution(executionArn=rerun_arn)["status"])
        return None if status == "RUNNING" else status

    # THEN it succeeds with a complete output; the rerun's own upload completed, and the killed
    # job's upload is still the only incomplete one (a rerun doesn't clean it up: lifecycle does)
    assert wait_until(finished, timeout=120, what="rerun finished") == "SUCCEEDED"
    assert assert_accounted(pipeline, [key]) == {key: "archived"}
    records = pipeline.jsonl(pipeline.r.output_bucket, output_base(key) + ".jsonl")
    assert len(records) == 150_000
    assert [u["UploadId"] for u in _uploads(pipeline, output_base(key))] == [left[0]["UploadId"]]
    # (clean up, so other tests' listings of this bucket stay tidy)
    pipeline.s3.abort_multipart_upload(
        Bucket=pipeline.r.output_bucket, Key=left[0]["Key"], UploadId=left[0]["UploadId"]
    )


def test_a_batch_job_stopped_with_sigterm_aborts_its_upload_and_batch_retries_it(
    pipeline: Pipeline, embedded: EmbeddedAws
) -> None:
    # GIVEN a large file, and the Batch job gets SIGTERM when it uploads its first output part
    key = "faults/stopped-job.csv"
    # a signal rule fires on any job's request: arm it once no earlier test's job still runs
    wait_until(lambda: embedded.batch_jobs_running() == 0, what="earlier Batch jobs ended")
    embedded.faults.add("batch:term")
    # WHEN it is processed
    pipeline.put(key, _large_csv(150_000))
    ex = pipeline.wait_for(key, timeout=120)
    # THEN the job stopped cleanly (exit 75, upload aborted), Batch retried it, and it succeeded
    assert len(_fired(embedded, "batch:term")) == 1
    assert ex.status == "SUCCEEDED", ex.cause
    assert ex.output is not None
    job_id = ex.output["convert"]["jobId"]
    (job,) = embedded.client("batch").describe_jobs(jobs=[job_id])["jobs"]
    log = (pipeline.aws.log_dir / "batch" / f"{job_id}.log").read_text()
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [75, 0], (
        _fired(embedded, "batch:term"),
        log[-3000:],
    )
    assert _uploads(pipeline, output_base(key)) == []
    assert assert_accounted(pipeline, [key]) == {key: "archived"}


# --- step errors and exit codes, from rule text ----------------------------------------------
def test_step_error_and_batch_exit_rules_fail_as_the_named_error_and_exit_code(
    pipeline: Pipeline, embedded: EmbeddedAws
) -> None:
    # GIVEN one transient error for convert and one permanent exit code for the next Batch job
    embedded.faults.add("lambda:convert:error=StorageUnavailable:1,batch:exit=65")
    small, large = "faults/step-error.csv", "faults/exit-code.csv"
    # WHEN a small and a large file are processed
    pipeline.put(small, SMALL)
    first = pipeline.wait_for(small)
    pipeline.put(large, _large_csv(200))
    second = pipeline.wait_for(large)
    # THEN the small one was retried and succeeded, the large one quarantined (exit 65)
    assert _task_failures(pipeline, first.arn) == ["StorageUnavailable"]
    assert first.status == "SUCCEEDED", first.cause
    assert json.loads(second.cause or "{}")["Container"]["ExitCode"] == 65
    assert assert_accounted(pipeline, [small, large]) == {
        small: "archived",
        large: "quarantined",
    }
