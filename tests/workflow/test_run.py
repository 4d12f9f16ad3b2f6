"""`chute run`'s engine (chute/ops/run.py) against the embedded runtime: files the pipeline
skips are reported at once, quarantined files carry their reason and report, and following
the executions doesn't read each one over and over."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from chute.local.embedded import EmbeddedAws
from chute.ops.run import IGNORED, RunOptions, collect_files, run_files
from tasks.workflow import Outcome


class _CountingSfn:
    """The Step Functions client, counting DescribeExecution calls."""

    def __init__(self, sfn: Any) -> None:
        self._sfn = sfn
        self.describes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sfn, name)

    def describe_execution(self, **kwargs: Any) -> Any:
        self.describes += 1
        return self._sfn.describe_execution(**kwargs)


def _run(embedded: EmbeddedAws, folder: Path, out: Path, sfn: Any = None) -> Any:
    r = embedded.resources
    return run_files(
        s3=embedded.client("s3"),
        sfn=sfn or embedded.client("stepfunctions"),
        staging_bucket=r.staging_bucket,
        state_machine_arn=r.state_machine_arn,
        options=RunOptions(out_dir=out, timeout_seconds=120, quarantine_bucket=r.quarantine_bucket),
        files=collect_files([folder]),
    )


def test_skipped_files_are_ignored_at_once_and_quarantine_reasons_are_reported(
    embedded: EmbeddedAws, tmp_path: Path
) -> None:
    # GIVEN a folder with a valid CSV, a ragged one and notes the pipeline doesn't process
    folder = tmp_path / "run-reasons"
    folder.mkdir()
    (folder / "ok.csv").write_text("id,name\n1,a\n")
    (folder / "ragged.csv").write_text("id,name\n1,a\n2,b,extra\n")
    (folder / "notes.json").write_text("{}")
    # WHEN chute run takes the folder through the pipeline
    results, finished = _run(embedded, folder, tmp_path / "out")
    by_name = {Path(r.key).name: r for r in results}
    # THEN the notes are IGNORED (never uploaded, nothing waited for), the rest finished
    assert finished
    notes = by_name["notes.json"]
    assert notes.outcome == IGNORED and notes.ok and notes.execution is None
    try:
        embedded.client("s3").head_object(Bucket=embedded.resources.staging_bucket, Key=notes.key)
        raise AssertionError("notes.json was uploaded")
    except ClientError as exc:
        assert exc.response["Error"]["Code"] in ("404", "NoSuchKey")
    assert by_name["ok.csv"].outcome == Outcome.SUCCEEDED
    # AND the quarantined file carries the reason, with its report saved beside the outputs
    ragged = by_name["ragged.csv"]
    assert ragged.outcome == Outcome.QUARANTINED
    assert ragged.reason and "row" in ragged.reason
    assert ragged.report == tmp_path / "out" / (ragged.key + ".error.json")
    assert json.loads(ragged.report.read_text())


def test_following_executions_reads_each_one_a_bounded_number_of_times(
    embedded: EmbeddedAws, tmp_path: Path
) -> None:
    # GIVEN eight small files
    folder = tmp_path / "run-reads"
    folder.mkdir()
    for i in range(8):
        (folder / f"f{i}.csv").write_text(f"id,name\n{i},x\n")
    sfn = _CountingSfn(embedded.client("stepfunctions"))
    # WHEN chute run follows them without a live display
    results, finished = _run(embedded, folder, tmp_path / "out", sfn=sfn)
    # THEN each execution was described when it appeared and when it ended, not on every poll
    assert finished and all(r.outcome == Outcome.SUCCEEDED for r in results)
    assert sfn.describes <= 2 * len(results)
