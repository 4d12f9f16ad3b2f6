"""Every file accounted for: the reliability suite's invariant, checked per key.

After the pipeline has finished with a set of keys, each one must be in exactly one of these
states (nothing silently gone):

- ``archived``: a SUCCEEDED execution, the original in the archive bucket, an output
  (``<base>.jsonl`` or ``<base>.parquet``) in the output bucket, nothing left in staging;
- ``quarantined``: the original and its ``<key>.error.json`` report in quarantine, not in staging;
- ``failed``: the newest execution FAILED (not quarantined) and the file is still in staging, so
  a rerun can finish it;
- ``stale``: the newest execution ended ``Stale`` (the uploader deleted or replaced the version).

Usage: ``outcomes = assert_accounted(pipeline, keys)`` -> ``{key: "archived" | ...}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from chute.ops.executions import ExecutionView, list_arns, source_of, view
from tasks.formats.keys import output_base, report_key
from tasks.workflow import Outcome

OUTPUT_SUFFIXES = (".jsonl", ".parquet")


class PipelineLike(Protocol):
    """What the helper needs (tests.support.pipeline.Pipeline has it)."""

    r: Any
    s3: Any
    sfn: Any


@dataclass(frozen=True)
class KeyState:
    key: str
    executions: list[ExecutionView]
    in_staging: bool
    archived: bool
    outputs: list[str]
    quarantined: bool
    report: bool

    @property
    def newest(self) -> ExecutionView | None:
        if not self.executions:
            return None
        return max(self.executions, key=lambda e: (e.started is not None, e.started))


def _all_keys(s3: Any, bucket: str, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.update(o["Key"] for o in page.get("Contents", []))
    return found


def _common_prefix(keys: list[str]) -> str:
    if not keys:
        return ""
    first, last = min(keys), max(keys)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


_KEY_OF: dict[str, str | None] = {}
"""Execution ARN -> the staged key it processes (an execution's input never changes, so the
suite asks once per execution, not at every poll)."""


def execution_key(sfn: Any, arn: str) -> str | None:
    if arn not in _KEY_OF:
        desc = sfn.describe_execution(executionArn=arn)
        _KEY_OF[arn] = source_of(desc.get("input")).get("key")
    return _KEY_OF[arn]


def executions_by_key(
    pipeline: PipelineLike, keys: Iterable[str]
) -> dict[str, list[ExecutionView]]:
    """The executions of each key (one DescribeExecution per execution of the state machine,
    a full view only for the wanted keys)."""
    wanted = set(keys)
    found: dict[str, list[ExecutionView]] = {key: [] for key in wanted}
    for item in list_arns(pipeline.sfn, pipeline.r.state_machine_arn):
        key = execution_key(pipeline.sfn, item["executionArn"])
        if key in wanted:
            found[key].append(view(pipeline.sfn, item["executionArn"]))
    return found


def key_states(pipeline: PipelineLike, keys: Iterable[str]) -> dict[str, KeyState]:
    keys = sorted(set(keys))
    r = pipeline.r
    prefix = _common_prefix(keys)
    staging = _all_keys(pipeline.s3, r.staging_bucket, prefix)
    archive = _all_keys(pipeline.s3, r.archive_bucket, prefix)
    quarantine = _all_keys(pipeline.s3, r.quarantine_bucket, prefix)
    output = _all_keys(pipeline.s3, r.output_bucket, output_base(prefix) if prefix else "")
    runs = executions_by_key(pipeline, keys)
    return {
        key: KeyState(
            key=key,
            executions=runs[key],
            in_staging=key in staging,
            archived=key in archive,
            outputs=[
                output_base(key) + suffix
                for suffix in OUTPUT_SUFFIXES
                if output_base(key) + suffix in output
            ],
            quarantined=key in quarantine,
            report=report_key(key) in quarantine,
        )
        for key in keys
    }


def outcome_of(state: KeyState) -> str:
    """The key's accounted outcome; AssertionError naming the key when it has none."""
    newest = state.newest
    where = (
        f"{state.key!r}: staging={state.in_staging} archive={state.archived}"
        f" outputs={state.outputs} quarantine={state.quarantined} report={state.report}"
        f" executions={[(e.name, e.status, e.outcome) for e in state.executions]}"
    )
    if newest is None:
        raise AssertionError(f"no execution for {where}")
    running = [e.name for e in state.executions if e.status == "RUNNING"]
    if running:
        raise AssertionError(f"still running {running}: {where}")
    succeeded = [e for e in state.executions if e.outcome == Outcome.SUCCEEDED]
    if len(succeeded) > 1 and len({e.etag for e in succeeded}) < len(succeeded):
        raise AssertionError(f"the same version SUCCEEDED more than once: {where}")
    if newest.outcome == Outcome.SUCCEEDED:
        if state.archived and state.outputs and not state.in_staging:
            return "archived"
        raise AssertionError(f"SUCCEEDED but not archived with an output: {where}")
    if newest.outcome == Outcome.QUARANTINED:
        if state.quarantined and state.report and not state.in_staging:
            return "quarantined"
        raise AssertionError(f"quarantined without original and report: {where}")
    if newest.outcome == Outcome.STALE:
        return "stale"
    if newest.outcome == Outcome.FAILED:
        if state.in_staging and not state.archived and not state.quarantined:
            return "failed"
        raise AssertionError(f"FAILED but not rerunnable from staging: {where}")
    raise AssertionError(f"unknown outcome {newest.outcome}: {where}")


def assert_accounted(pipeline: PipelineLike, keys: Iterable[str]) -> dict[str, str]:
    """Each key archived+output, quarantined+report, FAILED and rerunnable (in staging) or
    Stale; raises AssertionError listing every key that isn't. Returns {key: outcome}."""
    states = key_states(pipeline, keys)
    outcomes: dict[str, str] = {}
    problems: list[str] = []
    for key, state in states.items():
        try:
            outcomes[key] = outcome_of(state)
        except AssertionError as exc:
            problems.append(str(exc))
    if problems:
        raise AssertionError(f"{len(problems)} file(s) not accounted for:\n" + "\n".join(problems))
    return outcomes
