"""IAM as deployed, in the embedded runtime (chute.local.iam): a function or the Batch job whose
role lacks one statement fails on that call exactly as on AWS (the step's error handling).

The shared runtime enforces the stack's policies (the whole workflow suite runs under them);
these tests take one statement away for one file and put it back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from chute.local.embedded import EmbeddedAws
from tests.support.pipeline import LARGE_THRESHOLD, Pipeline


@contextmanager
def without_statement(aws: EmbeddedAws, step: str, resource: str) -> Iterator[None]:
    policy = aws.iam_policies[step]
    kept = [s for s in policy if s.get("Resource") != resource]
    assert len(kept) == len(policy) - 1, f"{step} has no one statement on {resource}"
    aws.set_policy(step, kept)
    try:
        yield
    finally:
        aws.set_policy(step, policy)


def test_a_missing_statement_fails_the_workflow_on_that_call(pipeline: Pipeline) -> None:
    aws = pipeline.aws
    # GIVEN the archive function's role without its statement on the archive bucket's objects
    with without_statement(aws, "archive", f"arn:aws:s3:::{aws.resources.archive_bucket}/*"):
        # WHEN a good file goes through
        key = "iam/orders.csv"
        pipeline.put(key, b"id,name\n1,Ann\n")
        ex = pipeline.wait_for(key, timeout=120)
    # THEN it converts, then fails in Archive on the first call AWS would refuse: the copy (one
    # CopyObject; a new archive key is written without a look first); a ClientError is not
    # retried
    assert ex.status == "FAILED"
    assert ex.current_state == "Archive"
    cause = ex.cause or ""
    assert "(AccessDenied) when calling the CopyObject operation" in cause
    assert "not authorized to perform: s3:PutObject" in cause
    # AND the file is still in staging (nothing was lost; a rerun redrives it)
    assert key in pipeline.keys(aws.resources.staging_bucket)


def test_the_batch_job_runs_with_its_roles_policy(pipeline: Pipeline) -> None:
    aws = pipeline.aws
    # GIVEN the Batch job role without its statement on the output bucket's objects
    with without_statement(aws, "batch", f"arn:aws:s3:::{aws.resources.output_bucket}/*"):
        # WHEN a large file goes through
        key = "iam/large.csv"
        body = ("n,v\n" + "".join(f"{i},{i * 3}\n" for i in range(400))).encode()
        assert len(body) >= LARGE_THRESHOLD
        pipeline.put(key, body)
        ex = pipeline.wait_for(key, timeout=120)
    # THEN the job fails on its first call there (an unexpected error: exit 70, BatchFailed)
    assert ex.status == "FAILED"
    assert ex.current_state == "BatchFailed"
    assert '"ExitCode":70' in (ex.cause or "").replace(" ", "")
    assert key in pipeline.keys(aws.resources.staging_bucket)
    logs = "".join(p.read_text() for p in (aws.log_dir / "batch").glob("*.log"))
    assert (
        "(AccessDenied) when calling the PutObject operation: User: arn:aws:sts::"
        f"{aws.resources.account}:assumed-role/chute-batch/local is not authorized" in logs
    )
