"""Operations on executions and files: status, show, rerun, requeue. Public AWS APIs only, so the
same code runs against the embedded runtime and AWS (through chute.ops.deployment.Deployment)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from chute.ops.deployment import Deployment
from chute.ops.executions import ExecutionView, execution_key, view
from chute.ops.upload import upload_file
from tasks import names
from tasks.adapters.sfn import NOT_REDRIVABLE as _NOT_REDRIVABLE
from tasks.fence import Stamp
from tasks.formats import keys
from tasks.workflow import FAIL_STATES, Outcome, State, rerun_name


class OperateError(Exception):
    """A request that can't be met (unknown execution, nothing quarantined under a key...)."""


# --- status ---------------------------------------------------------------------------------
def executions(
    d: Deployment,
    *,
    status: str | None = None,
    since: datetime | None = None,
    key_prefix: str | None = None,
    limit: int = 50,
    per_file: bool = True,
) -> list[ExecutionView]:
    """The newest executions first, through every page of ListExecutions as needed.

    ``per_file``: only each file's latest execution (a rerun, a redrive or a requeue of a file is
    its latest), so ``status="FAILED"`` means files whose latest attempt failed — not a file
    that was since fixed. Without it, every execution."""
    found: list[ExecutionView] = []
    seen: set[str] = set()
    for item in list_executions(d, None if per_file else status):
        if since is not None and item["startDate"] < since:
            break  # ListExecutions returns newest first
        arn = item["executionArn"]
        if per_file:
            key = execution_key(d.sfn, arn) or arn
            if key in seen:
                continue  # an earlier execution of a file already listed
            seen.add(key)
            if status is not None and item["status"] != status:
                continue
            if key_prefix and not key.startswith(key_prefix):
                continue
        current = view(d.sfn, arn)
        if key_prefix and not (current.key or "").startswith(key_prefix):
            continue
        found.append(current)
        if len(found) >= limit:
            break
    return found


@dataclass(frozen=True)
class IgnoredFile:
    """A staged file the trigger skips: no execution is ever started for it."""

    bucket: str
    key: str
    size: int
    modified: datetime
    reason: str


def ignored_files(
    d: Deployment, *, key_prefix: str | None = None, since: datetime | None = None
) -> list[IgnoredFile]:
    """Files the pipeline never starts for: in staging under a suffix it doesn't process (they
    stay there untouched), and data files put into the output bucket (the pipeline reads only
    staging; chute writes only its outputs there)."""
    found = []
    for bucket, ignored in ((d.staging_bucket, _unprocessed), (d.output_bucket, _misplaced)):
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if key_prefix:
            kwargs["Prefix"] = key_prefix
        for page in d.s3.get_paginator("list_objects_v2").paginate(**kwargs):
            for obj in page.get("Contents", []):
                reason = ignored(obj["Key"])
                if reason is None or (since is not None and obj["LastModified"] < since):
                    continue
                found.append(
                    IgnoredFile(bucket, obj["Key"], int(obj["Size"]), obj["LastModified"], reason)
                )
    return found


def _unprocessed(key: str) -> str | None:
    if key.endswith("/") or keys.matches_suffix(key, names.DEFAULT_SUFFIXES):
        return None
    return "suffix not processed (left in staging)"


def _misplaced(key: str) -> str | None:
    if key.startswith(keys.BATCH_FAILURES_PREFIX) or not keys.matches_suffix(
        key, names.DEFAULT_SUFFIXES
    ):
        return None  # chute's own outputs (.jsonl, .parquet) and working files
    return "in the output bucket: the pipeline reads only the staging bucket"


def actionable_failures(views: list[ExecutionView]) -> list[ExecutionView]:
    """Failures a person may act on (what `status --failed` and `rerun --failed` take): a
    Replaced file is settled (archived; a later upload's outputs are kept)."""
    return [v for v in views if v.outcome != Outcome.REPLACED]


def watch_round(d: Deployment, seen: dict[str, ExecutionView], since: datetime) -> None:
    """One refresh of `chute watch`: every execution started since ``since`` (also those that
    started and ended between two refreshes) and every running one, read again while it runs or
    when it ended; ``seen`` (ARN -> view) is updated in place."""
    listed: dict[str, str] = {}
    for item in list_executions(d, None):
        if item["startDate"] < since:
            break  # newest first
        listed[item["executionArn"]] = item["status"]
    for item in list_executions(d, "RUNNING"):
        listed[item["executionArn"]] = item["status"]
    for arn, status in listed.items():
        known = seen.get(arn)
        if known is None or known.status == "RUNNING" or known.status != status:
            seen[arn] = view(d.sfn, arn)


def list_executions(d: Deployment, status: str | None) -> Iterator[dict[str, Any]]:
    """ListExecutions items (newest first), page by page."""
    kwargs: dict[str, Any] = {"stateMachineArn": d.state_machine_arn}
    if status:
        kwargs["statusFilter"] = status
    for page in d.sfn.get_paginator("list_executions").paginate(**kwargs):
        yield from page["executions"]


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``30m``, ``2h``, ``7d`` -> that long ago (UTC)."""
    if not text:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        amount, unit = float(text[:-1]), text[-1]
        seconds = amount * units[unit]
    except (KeyError, ValueError) as exc:
        raise OperateError(f"--since {text!r}: use a number and s, m, h or d (e.g. 2h)") from exc
    return (now or datetime.now(UTC)) - timedelta(seconds=seconds)


# --- show -----------------------------------------------------------------------------------
@dataclass
class StateRun:
    name: str
    started: datetime
    ended: datetime | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    batch_job_id: str | None = None
    log_stream: str | None = None
    batch_attempts: int | None = None
    """How many attempts Batch made (the job's retry strategy), from DescribeJobs."""
    batch_exit_code: int | None = None
    batch_reason: str | None = None

    @property
    def seconds(self) -> float | None:
        return (self.ended - self.started).total_seconds() if self.ended else None


@dataclass
class Timeline:
    execution: ExecutionView
    states: list[StateRun]
    input: dict[str, Any]
    console_url: str | None
    events: list[dict[str, Any]] = field(default_factory=list)  # GetExecutionHistory's


def resolve(d: Deployment, name_or_key: str) -> str:
    """An execution ARN from an ARN, an execution name, or a file key (its latest execution)."""
    if name_or_key.startswith("arn:"):
        return name_or_key
    arn = d.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name_or_key}"
    try:
        d.sfn.describe_execution(executionArn=arn)
        return arn
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("ExecutionDoesNotExist", "InvalidArn"):
            raise
    for item in list_executions(d, None):
        if view(d.sfn, item["executionArn"]).key == name_or_key:
            return str(item["executionArn"])
    raise OperateError(f"no execution named {name_or_key!r} and none for a file with that key")


def timeline(d: Deployment, arn: str) -> Timeline:
    try:
        current = view(d.sfn, arn)
    except ClientError as exc:
        raise OperateError(f"{arn}: {exc.response['Error']['Message']}") from exc
    events: list[dict[str, Any]] = []
    for page in d.sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])
    states: list[StateRun] = []
    for event in events:
        if "stateEnteredEventDetails" in event:
            states.append(StateRun(event["stateEnteredEventDetails"]["name"], event["timestamp"]))
        elif "stateExitedEventDetails" in event and states:
            states[-1].ended = event["timestamp"]
        elif event["type"] == "TaskScheduled" and states:
            states[-1].attempts += 1
        elif "taskFailedEventDetails" in event and states:
            states[-1].errors.append(event["taskFailedEventDetails"].get("error", "?"))
            _batch_details(states[-1], event["taskFailedEventDetails"].get("cause"))
        elif "taskSucceededEventDetails" in event and states:
            _batch_details(states[-1], event["taskSucceededEventDetails"].get("output"))
        elif "taskSubmittedEventDetails" in event and states:
            _batch_details(states[-1], event["taskSubmittedEventDetails"].get("output"))
    if current.status != "RUNNING" and states and states[-1].ended is None:
        states[-1].ended = current.stopped
    if current.cause and current.route == "batch":
        _batch_details(next(s for s in states if s.name == State.CONVERT_IN_BATCH), current.cause)
    description = d.sfn.describe_execution(executionArn=arn)
    return Timeline(
        execution=current,
        states=states,
        input=json.loads(description.get("input") or "{}"),
        console_url=d.console_url(arn),
        events=events,
    )


@dataclass(frozen=True)
class Replacement:
    """Another staged file on the other side of a two-keys-one-output collision
    (docs/guarantees.md#two-files-one-output)."""

    key: str
    uploaded: str | None


def replaced_files(execution: ExecutionView) -> list[Replacement]:
    """The files whose outputs this (succeeded) execution replaced: earlier uploads of keys that
    map to the same outputs (the convert step's ``replaced``; the Lambda route reports it)."""
    convert = (execution.output or {}).get("convert") or {}
    found = convert.get("replaced") if isinstance(convert, dict) else None
    return [
        Replacement(str(r.get("key")), r.get("uploaded"))
        for r in found or []
        if isinstance(r, dict) and r.get("key")
    ]


def outputs_now_owned_by(d: Deployment, execution: ExecutionView) -> list[tuple[str, Replacement]]:
    """The outputs of a succeeded execution that now belong to another staged file (a later
    upload of a key that maps to them), as ``(output key, that file)``."""
    if execution.status != "SUCCEEDED" or not execution.key:
        return []
    written = (execution.output or {}).get("output") or {}
    bucket, keys = written.get("bucket"), (written.get("keys") or {}).values()
    found = []
    for key in keys:
        try:
            head = d.s3.head_object(Bucket=bucket, Key=key)
        except ClientError:
            continue  # deleted since: nothing to say about its owner
        stamp = Stamp.from_metadata({k.lower(): v for k, v in head.get("Metadata", {}).items()})
        if stamp is not None and stamp.key is not None and stamp.key != execution.key:
            found.append((str(key), Replacement(stamp.key, stamp.uploaded)))
    return found


def _batch_details(state: StateRun, document: str | None) -> None:
    """What a Batch job's DescribeJobs document (a .sync result, or the cause of its
    States.TaskFailed) says: job id, attempts, exit code, reason, log stream."""
    try:
        data = json.loads(document or "")
    except ValueError:
        return
    if not isinstance(data, dict) or "JobId" not in data:
        return
    state.batch_job_id = data["JobId"]
    container = data.get("Container") or {}
    attempts = [a for a in data.get("Attempts") or [] if isinstance(a, dict)]
    last = (attempts[-1].get("Container") or {}) if attempts else {}
    if attempts:
        state.batch_attempts = len(attempts)
    exit_code = container.get("ExitCode", last.get("ExitCode"))
    if isinstance(exit_code, int):
        state.batch_exit_code = exit_code
    reason = container.get("Reason") or last.get("Reason") or data.get("StatusReason")
    if isinstance(reason, str) and reason:
        state.batch_reason = reason
    stream = container.get("LogStreamName") or last.get("LogStreamName")
    state.log_stream = stream or state.log_stream


def batch_summary(state: StateRun) -> str | None:
    """One line for a Batch job: ``job ID: exit 137 (reason), 3 attempts, log STREAM``."""
    if state.batch_job_id is None:
        return None
    parts = []
    if state.batch_exit_code is not None:
        parts.append(f"exit {state.batch_exit_code}")
    if state.batch_reason:
        parts[-1:] = [f"{parts[-1]} ({state.batch_reason})" if parts else state.batch_reason]
    if state.batch_attempts is not None:
        parts.append(f"{state.batch_attempts} attempt{'s' if state.batch_attempts != 1 else ''}")
    if state.log_stream:
        parts.append(f"log {state.log_stream}")
    return (
        f"job {state.batch_job_id}: " + ", ".join(parts) if parts else f"job {state.batch_job_id}"
    )


# --- rerun ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RerunResult:
    execution: str  # name of the execution asked for
    action: str  # redriven | restarted | skipped | refused
    reason: str
    new_execution: str | None = None


def rerun(
    d: Deployment,
    arns: list[str],
    *,
    force: bool = False,
    per_second: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[RerunResult]:
    """Redrive each failed execution (it resumes at the state it failed in), or restart it as a
    new execution where that can't help: it ended in a Fail state (BatchFailed, BatchSubmitFailed,
    a forced Rejected, Stale), which a redrive would enter again, or Step Functions refuses the
    redrive (ExecutionNotRedrivable: ended more than 14 days ago...; locally also an execution
    interrupted by a stop of the embedded runtime).

    Safe to repeat: a running or succeeded execution is left alone, and a restart has a fixed
    name, so a second attempt finds it instead of starting another.
    """
    results = []
    for index, arn in enumerate(arns):
        if index:
            sleep(1.0 / per_second)
        results.append(_rerun_one(d, arn, force=force))
    return results


def _rerun_one(d: Deployment, arn: str, *, force: bool) -> RerunResult:
    current = view(d.sfn, arn)
    name = current.name
    if current.outcome in (Outcome.RUNNING, Outcome.SUCCEEDED):
        return RerunResult(name, "skipped", f"execution is {current.status}")
    if current.outcome == Outcome.REPLACED:
        # a rerun keeps its upload time, so it would lose again (docs/guarantees.md)
        return RerunResult(
            name,
            "refused",
            "a later upload of another key that maps to the same outputs owns them (`chute show`"
            " names it); the original is archived: upload it again to make it the latest",
        )
    if current.outcome == Outcome.QUARANTINED:
        if not force:
            return RerunResult(
                name,
                "refused",
                f"permanent error {current.error}: the file is in quarantine; fix it (or its "
                f"contract) and `chute requeue {current.key}`, or rerun with --force",
            )
        # the original is in quarantine, not staging: a restart would only find it missing
        if current.key and any(o["Key"] == current.key for o in quarantined(d)):
            requeue(d, current.key)
            return RerunResult(
                name,
                "requeued",
                "the file was in quarantine: moved back to staging, a new execution runs it",
            )
        return RerunResult(
            name,
            "refused",
            f"the file {current.key} is no longer in quarantine (requeued already?)",
        )
    restart_arn = arn.rsplit(":", 1)[0] + ":" + rerun_name(name)
    try:
        existing = d.sfn.describe_execution(executionArn=restart_arn)
        return RerunResult(
            name,
            "skipped",
            f"already rerun as {rerun_name(name)} ({existing['status']})",
            rerun_name(name),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ExecutionDoesNotExist":
            raise
    # the same on AWS and on the embedded engine (its RedriveExecution:
    # chute.local.moto_patches.redrive)
    if current.current_state in FAIL_STATES:
        why = (
            f"it ended in the Fail state {current.current_state}, where a redrive would resume"
            " and fail again"
        )
    else:
        try:
            d.sfn.redrive_execution(executionArn=arn)
            return RerunResult(name, "redriven", "resumed at the failed state", name)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code not in _NOT_REDRIVABLE:
                raise
            why = f"redrive not possible ({code}: {exc.response['Error'].get('Message', '')})"
    description = d.sfn.describe_execution(executionArn=arn)
    started = d.sfn.start_execution(
        stateMachineArn=d.state_machine_arn,
        name=rerun_name(name),
        input=description.get("input") or "{}",
    )
    del started
    return RerunResult(
        name, "restarted", f"{why}: new execution with the same input", rerun_name(name)
    )


# --- requeue --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requeued:
    key: str
    size: int


def quarantined(d: Deployment, since: datetime | None = None) -> list[dict[str, Any]]:
    items = []
    for page in d.s3.get_paginator("list_objects_v2").paginate(Bucket=d.quarantine_bucket):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(keys.REPORT_SUFFIX):
                continue
            if since is not None and obj["LastModified"] < since:
                continue
            items.append(obj)
    return items


def requeue(
    d: Deployment,
    key: str | None = None,
    *,
    everything: bool = False,
    since: datetime | None = None,
    replacement: Path | None = None,
) -> list[Requeued]:
    """Move quarantined files back to staging (a new upload: the pipeline runs again) and
    remove their error reports. With ``replacement`` (one KEY only): upload that fixed copy to
    staging instead of the quarantined original, which is removed with its report."""
    if key is None and not everything:
        raise OperateError("name a KEY or pass --all")
    if replacement is not None and key is None:
        raise OperateError("--file replaces one quarantined file: name its KEY")
    if replacement is not None and not replacement.is_file():
        raise OperateError(f"{replacement}: no such file")
    candidates = quarantined(d, since)
    if key is not None:
        candidates = [o for o in candidates if o["Key"] == key]
        if not candidates:
            raise OperateError(f"nothing in quarantine under {key!r}")
    moved = []
    for obj in candidates:
        if replacement is not None:
            size = upload_file(d.s3, replacement, d.staging_bucket, obj["Key"]).size
            d.s3.delete_object(Bucket=d.quarantine_bucket, Key=obj["Key"])
            d.s3.delete_object(Bucket=d.quarantine_bucket, Key=keys.report_key(obj["Key"]))
            moved.append(Requeued(obj["Key"], size))
            continue
        d.s3.copy_object(
            Bucket=d.staging_bucket,
            Key=obj["Key"],
            CopySource={"Bucket": d.quarantine_bucket, "Key": obj["Key"]},
        )
        d.s3.delete_object(Bucket=d.quarantine_bucket, Key=obj["Key"])
        d.s3.delete_object(Bucket=d.quarantine_bucket, Key=keys.report_key(obj["Key"]))
        moved.append(Requeued(obj["Key"], int(obj["Size"])))
    return moved
