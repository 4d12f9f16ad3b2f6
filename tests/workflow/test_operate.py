"""Operating chute against the embedded runtime: status, show, rerun, requeue."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from chute.local import moto_patches
from chute.local.embedded import EmbeddedAws
from chute.ops import operate
from chute.ops.deployment import Deployment, connect
from tests.support.pipeline import Pipeline, wait_until

GOOD = b"id,name\n1,Ann\n2,Bob\n"


@pytest.fixture
def deployment(embedded: EmbeddedAws) -> Deployment:
    return connect(endpoint_url=embedded.endpoint_url)


def test_a_transient_failure_is_found_shown_and_redriven_once(
    pipeline: Pipeline, embedded: EmbeddedAws, deployment
) -> None:
    # GIVEN a file whose conversion keeps failing transiently (retries exhausted)
    embedded.inject_fault("convert", "StorageUnavailable", times=5)
    key = "ops/transient.csv"
    pipeline.put(key, GOOD)
    failed = pipeline.wait_for(key)
    assert failed.status == "FAILED"
    # WHEN the operator looks for failures
    listed = operate.executions(deployment, status="FAILED", key_prefix="ops/")
    # THEN it is listed with its error
    assert [(e.key, e.error) for e in listed] == [(key, "StorageUnavailable")]
    # AND `show` (by key) lists the retries of the convert step and the final error
    tl = operate.timeline(deployment, operate.resolve(deployment, key))
    convert = next(s for s in tl.states if s.name == "ConvertInLambda")
    assert convert.attempts == 5
    assert convert.errors == ["StorageUnavailable"] * 5
    assert tl.execution.error == "StorageUnavailable"
    assert tl.input["source"]["key"] == key
    assert tl.console_url is None  # not on AWS
    # WHEN the fault is gone and the operator reruns it (twice)
    with handler_invocations(embedded, key) as calls:
        first = operate.rerun(deployment, [failed.arn], sleep=lambda _: None)
        second = operate.rerun(deployment, [failed.arn], sleep=lambda _: None)

        def finished() -> str | None:
            status = deployment.sfn.describe_execution(executionArn=failed.arn)["status"]
            return None if status == "RUNNING" else status

        # THEN the same execution was redriven, as on AWS, and succeeded
        assert wait_until(finished, what="redrive finished") == "SUCCEEDED"
    assert (first[0].action, first[0].new_execution) == ("redriven", failed.name)
    assert second[0].action == "skipped"
    # AND it resumed at the failed state: Validate did not run again
    assert dict(calls) == {"convert": 1, "archive": 1}
    redriven = deployment.sfn.describe_execution(executionArn=failed.arn)
    assert redriven["redriveCount"] == 1
    assert [e.name for e in pipeline.executions_for(key)] == [failed.name]


@contextmanager
def handler_invocations(embedded: EmbeddedAws, key: str) -> Iterator[Counter[str]]:
    """How many times each step's function is invoked for ``key`` (the lambda-executor hook of
    chute.local.moto_patches)."""
    calls: Counter[str] = Counter()
    inner = moto_patches.HOOKS.lambda_executor
    assert inner is not None

    def counting(fn: Any, event: Any) -> tuple[str, bool, str]:
        text = event if isinstance(event, str | bytes) else json.dumps(event)
        if key in (text.decode() if isinstance(text, bytes) else text):
            calls[fn.function_name.removeprefix(f"{embedded.resources.prefix}-")] += 1
        return inner(fn, event)

    moto_patches.HOOKS.lambda_executor = counting
    try:
        yield calls
    finally:
        moto_patches.HOOKS.lambda_executor = inner


def test_a_quarantined_file_is_refused_then_requeued_after_a_fix(
    pipeline: Pipeline, deployment
) -> None:
    # GIVEN a file quarantined for a ragged row
    key = "ops/ragged.csv"
    pipeline.put(key, b"a,b\n1,2,3\n")
    quarantined = pipeline.wait_for(key)
    assert quarantined.outcome == "QUARANTINED"
    # WHEN the operator tries to rerun it
    (result,) = operate.rerun(deployment, [quarantined.arn])
    # THEN it is refused with the way forward
    assert result.action == "refused"
    assert f"chute requeue {key}" in result.reason
    # WHEN the file is fixed in quarantine and requeued
    pipeline.s3.put_object(Bucket=pipeline.r.quarantine_bucket, Key=key, Body=b"a,b\n1,2\n")
    moved = operate.requeue(deployment, key)
    # THEN it left quarantine (report too) and the pipeline converted it
    assert [m.key for m in moved] == [key]
    assert not [k for k in pipeline.keys(pipeline.r.quarantine_bucket) if k.startswith(key)]

    def succeeded() -> bool:
        return any(e.status == "SUCCEEDED" for e in pipeline.executions_for(key))

    assert wait_until(succeeded, timeout=60, what="requeued file converted")


def test_requeue_of_an_unknown_key_is_a_clear_error(deployment) -> None:
    with pytest.raises(operate.OperateError, match="nothing in quarantine"):
        operate.requeue(deployment, "no/such.csv")


def test_show_of_an_unknown_execution_is_a_clear_error(deployment) -> None:
    with pytest.raises(operate.OperateError, match="no execution named"):
        operate.resolve(deployment, "does-not-exist")


def test_status_since_and_json_shape(pipeline: Pipeline, deployment) -> None:
    key = "ops/recent.csv"
    pipeline.put(key, GOOD)
    pipeline.wait_for(key)
    recent = operate.executions(
        deployment, since=operate.parse_since("10m"), key_prefix="ops/recent"
    )
    assert [e.key for e in recent] == [key]
    assert json.loads(json.dumps([e.name for e in recent]))


def test_a_failure_rerun_to_success_is_no_longer_listed_as_failed(
    pipeline: Pipeline, embedded: EmbeddedAws, deployment
) -> None:
    # GIVEN a failed execution that was since restarted (as `chute rerun` restarts) and succeeded
    embedded.inject_fault("convert", "StorageUnavailable", times=5)
    key = "ops/rerun-to-success.csv"
    pipeline.put(key, GOOD)
    failed = pipeline.wait_for(key)
    assert failed.status == "FAILED"
    listed = operate.executions(deployment, status="FAILED", key_prefix=key)
    assert [v.arn for v in listed] == [failed.arn]
    description = deployment.sfn.describe_execution(executionArn=failed.arn)
    restart = deployment.sfn.start_execution(
        stateMachineArn=deployment.state_machine_arn,
        name=operate.rerun_name(failed.name),
        input=description["input"],
    )["executionArn"]

    def finished() -> str | None:
        status = deployment.sfn.describe_execution(executionArn=restart)["status"]
        return None if status == "RUNNING" else status

    assert wait_until(finished, what="restart finished") == "SUCCEEDED"
    # WHEN the operator asks for failures THEN that file is done with: its latest run succeeded
    assert operate.executions(deployment, status="FAILED", key_prefix=key) == []
    assert [v.status for v in operate.executions(deployment, key_prefix=key)] == ["SUCCEEDED"]


def test_forcing_a_rerun_of_a_quarantined_file_requeues_it(
    pipeline: Pipeline, embedded: EmbeddedAws, deployment
) -> None:
    # GIVEN a quarantined file
    key = "ops/forced-quarantined.csv"
    pipeline.put(key, b"id,name\n1,a\n2,b,extra\n")
    rejected = pipeline.wait_for(key)
    assert rejected.status == "FAILED"
    assert any(o["Key"] == key for o in operate.quarantined(deployment))
    # WHEN the operator forces a rerun of its execution
    [result] = operate.rerun(deployment, [rejected.arn], force=True, sleep=lambda _: None)
    # THEN the file went back to staging (not a restart that finds no source) and runs again
    assert result.action == "requeued"

    def runs() -> int:
        return len(operate.executions(deployment, key_prefix=key, limit=10, per_file=False))

    wait_until(lambda: runs() >= 2, what="a new execution of the requeued file")
    # AND without --force it is refused with the requeue hint
    [refused] = operate.rerun(deployment, [rejected.arn], sleep=lambda _: None)
    assert refused.action == "refused" and "chute requeue" in refused.reason


def test_watch_keeps_an_execution_that_started_and_ended_between_two_refreshes(
    pipeline: Pipeline, deployment
) -> None:
    from datetime import UTC, datetime, timedelta

    from chute.ops.executions import ExecutionView

    # GIVEN a watch that has refreshed once
    seen: dict[str, ExecutionView] = {}
    since = datetime.now(UTC) - timedelta(seconds=1)
    operate.watch_round(deployment, seen, since)
    before = set(seen)
    # WHEN a file is processed from start to end before the next refresh
    key = "ops/between-refreshes.csv"
    pipeline.put(key, GOOD)
    done = pipeline.wait_for(key)
    operate.watch_round(deployment, seen, since)
    # THEN the next refresh shows it, finished (it was never seen RUNNING)
    new = {arn: v for arn, v in seen.items() if arn not in before}
    assert [(v.key, v.status) for v in new.values()] == [(key, done.status)]
    assert done.status == "SUCCEEDED"
