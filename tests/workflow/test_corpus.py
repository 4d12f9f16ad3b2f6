"""The bad-input corpus through the real state machine: every case at once, each with its
expected outcome (tests/support/corpus.py); then a good file still succeeds.

Run alone: ``.venv/bin/pytest tests/workflow/test_corpus.py -q -s`` (prints the figures).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from chute.ops.executions import ExecutionView, list_arns, view
from tasks.formats import keys as formats
from tests.support.corpus import IGNORED, PREFIX, SUCCEEDED, Case, cases
from tests.support.pipeline import Pipeline

DEADLINE_SECONDS = 300
LOCAL_PATHS = (str(Path.cwd()), str(Path.home()), "/tmp/", "site-packages", '.py"', ".py,")


def test_every_corpus_case_ends_as_expected_and_a_good_file_still_succeeds(
    pipeline: Pipeline,
) -> None:
    corpus = cases()
    started = time.monotonic()
    # GIVEN every case uploaded at once
    for case in corpus:
        pipeline.s3.put_object(Bucket=pipeline.r.staging_bucket, Key=case.key, Body=case.body)
    expected = {c.key for c in corpus if c.outcome != IGNORED}
    # WHEN they have all been processed (bounded wait)
    finished = _wait_all(pipeline, expected, DEADLINE_SECONDS)
    elapsed = time.monotonic() - started
    # THEN each ended as its expectation says
    problems: list[str] = []
    for case in corpus:
        problems.extend(
            f"{case.name} ({case.key!r}): {p}" for p in _check(pipeline, case, finished)
        )
    assert not problems, "\n".join(problems)
    # AND a good file still succeeds afterwards
    key = f"{PREFIX}after/good.csv"
    pipeline.put(key, b"id,name\n1,a\n")
    after = pipeline.wait_for(key)
    assert after.status == "SUCCEEDED", after.cause
    outcomes = Counter(c.outcome for c in corpus)
    errors = Counter(c.error for c in corpus if c.error)
    routes = Counter(finished[c.key].route or "validate" for c in corpus if c.key in finished)
    print(
        f"\ncorpus: {len(corpus)} cases in {elapsed:.1f}s; outcomes {dict(outcomes)};"
        f" errors {dict(errors)}; routes {dict(routes)}"
    )


def _wait_all(pipeline: Pipeline, keys: set[str], timeout: float) -> dict[str, ExecutionView]:
    """The finished execution of each key (one view per execution once it has finished)."""
    finished: dict[str, ExecutionView] = {}
    seen_done: set[str] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in list_arns(pipeline.sfn, pipeline.r.state_machine_arn):
            arn = item["executionArn"]
            if arn in seen_done or item.get("status") == "RUNNING":
                continue
            current = view(pipeline.sfn, arn)
            seen_done.add(arn)
            if current.key in keys:
                finished[current.key] = current
        if keys <= set(finished):
            return finished
        time.sleep(0.5)
    missing = sorted(keys - set(finished))
    raise AssertionError(f"{len(missing)} cases unfinished after {timeout}s: {missing[:10]}")


def _check(pipeline: Pipeline, case: Case, finished: dict[str, ExecutionView]) -> list[str]:
    r = pipeline.r
    staged = _exists(pipeline, r.staging_bucket, case.key)
    if case.outcome == IGNORED:
        starts = pipeline.executions_for(case.key)
        return [
            p for p, bad in (("an execution started", starts), ("left staging", not staged)) if bad
        ]
    ex = finished[case.key]
    problems: list[str] = []
    if ex.outcome != case.outcome:
        problems.append(f"outcome {ex.outcome} ({ex.error}: {(ex.cause or '')[:300]})")
        return problems
    if case.outcome == SUCCEEDED:
        if staged:
            problems.append("still in staging")
        if pipeline.read(r.archive_bucket, case.key) != case.body:
            problems.append("archived original differs")
        assert ex.output is not None
        jsonl = ex.output["output"]["keys"]["jsonl"]
        rows = pipeline.read(r.output_bucket, jsonl).count(b"\n")
        if case.rows is not None and rows != case.rows:
            problems.append(f"{rows} rows in the output, expected {case.rows}")
        return problems
    # quarantined: the original and its report beside it, nothing in staging or the outputs
    # A Batch job's failure reaches the workflow as States.TaskFailed; the report names its error.
    execution_error = "States.TaskFailed" if case.failed_state == "ConvertInBatch" else case.error
    if ex.error != execution_error:
        problems.append(f"error {ex.error}, expected {execution_error}")
    if staged:
        problems.append("still in staging")
    if not _exists(pipeline, r.quarantine_bucket, case.key):
        problems.append("original not in quarantine")
    elif pipeline.read(r.quarantine_bucket, case.key) != case.body:
        problems.append("quarantined original differs")
    if any(k.startswith(formats.output_base(case.key)) for k in _outputs(pipeline)):
        problems.append("an output was published")
    report = json.loads(pipeline.read(r.quarantine_bucket, f"{case.key}.error.json"))
    if report["error"] != case.error:
        problems.append(f"report names {report['error']}")
    if case.failed_state and report["failedState"] != case.failed_state:
        problems.append(f"failed in {report['failedState']}, expected {case.failed_state}")
    said = report.get("message") or report.get("cause") or ""
    problems.extend(
        f"report doesn't mention {m!r}: {said[:300]}" for m in case.mentions if m not in said
    )
    text = json.dumps(report, ensure_ascii=False)
    if "Traceback" in text:
        problems.append("the report holds a Python stack trace")
    problems.extend(f"the report holds a local path ({p})" for p in LOCAL_PATHS if p in text)
    return problems


def _outputs(pipeline: Pipeline) -> list[str]:
    pages = pipeline.s3.get_paginator("list_objects_v2").paginate(
        Bucket=pipeline.r.output_bucket, Prefix=PREFIX
    )
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _exists(pipeline: Pipeline, bucket: str, key: str) -> bool:
    try:
        pipeline.s3.head_object(Bucket=bucket, Key=key)
    except pipeline.s3.exceptions.ClientError:
        return False
    return True
