"""Lambda and Batch (chute/local/moto_patches/lambda_and_batch.py): DescribeJobs' exit code
(the executor hooks run in every workflow test).

How these tests go: tests/support/moto_patches.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from chute.local.embedded import EmbeddedAws
from tests.support.moto_patches import without
from tests.support.pipeline import wait_until


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
