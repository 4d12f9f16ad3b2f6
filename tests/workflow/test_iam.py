"""IAM as deployed, in the embedded runtime (chute.local.iam): a function whose role lacks one
statement fails on that call exactly as on AWS (AccessDenied, the step's error handling)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chute.local.embedded import EmbeddedAws, LocalSettings, free_port
from tests.support.pipeline import Pipeline

LARGE = 2048  # bytes: files of at least this size take the Batch route


@pytest.fixture(scope="module")
def narrowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedAws]:
    settings = LocalSettings(
        port=free_port(),
        time_scale=0.001,
        state_dir=Path(tmp_path_factory.mktemp("chute-iam")),
        persist=False,
        warm_workers=False,
        iam=True,
        large_file_threshold_bytes=LARGE,
    )
    with EmbeddedAws(settings) as aws:
        yield aws


def test_a_missing_statement_fails_the_workflow_on_that_call(narrowed: EmbeddedAws) -> None:
    # GIVEN the archive function's role without its statement on the archive bucket's objects
    archive = narrowed.iam_policies["archive"]
    target = f"arn:aws:s3:::{narrowed.resources.archive_bucket}/*"
    kept = [s for s in archive if s.get("Resource") != target]
    assert len(kept) == len(archive) - 1
    narrowed.iam_policies["archive"] = kept
    pipeline = Pipeline(narrowed)
    # WHEN a good file goes through
    key = "iam/orders.csv"
    pipeline.put(key, b"id,name\n1,Ann\n")
    ex = pipeline.wait_for(key, timeout=120)
    # THEN it converts, then fails in Archive on the write AWS would refuse, named as AWS names it
    assert ex.status == "FAILED"
    assert ex.current_state == "Archive"
    # (its first call there is a HEAD, which S3 refuses with a bare 403, no body)
    assert "An error occurred (403) when calling the HeadObject operation: Forbidden" in (
        ex.cause or ""
    )
    # AND the file is still in staging (nothing was lost)
    assert key in pipeline.keys(narrowed.resources.staging_bucket)


def test_the_batch_job_runs_with_its_roles_policy(narrowed: EmbeddedAws) -> None:
    # GIVEN the Batch job role without its statement on the output bucket's objects
    job = narrowed.iam_policies["batch"]
    target = f"arn:aws:s3:::{narrowed.resources.output_bucket}/*"
    narrowed.iam_policies["batch"] = [s for s in job if s.get("Resource") != target]
    pipeline = Pipeline(narrowed)
    # WHEN a large file goes through
    key = "iam/large.csv"
    body = ("n,v\n" + "".join(f"{i},{i * 3}\n" for i in range(400))).encode()
    assert len(body) >= LARGE
    pipeline.put(key, body)
    ex = pipeline.wait_for(key, timeout=120)
    # THEN the job fails on its first write (an unexpected error: exit 70), the file stays staged
    assert ex.status == "FAILED"
    assert ex.current_state == "BatchFailed"
    assert '"ExitCode":70' in (ex.cause or "").replace(" ", "")
    assert key in pipeline.keys(narrowed.resources.staging_bucket)
    logs = "".join(p.read_text() for p in (narrowed.log_dir / "batch").glob("*.log"))
    assert "(403) when calling the HeadObject operation: Forbidden" in logs  # its first check
