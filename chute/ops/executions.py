"""Read executions back as operators think of them: one file, its route, its outcome.

Works against any Step Functions endpoint (embedded or AWS): only public API calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasks.workflow import Outcome, classify, fail_state_of, route_of


@dataclass(frozen=True)
class ExecutionView:
    name: str
    arn: str
    status: str  # the Step Functions status
    outcome: Outcome
    key: str | None
    etag: str | None
    route: str | None  # "lambda" | "batch" | None (not reached yet)
    started: datetime | None
    stopped: datetime | None
    current_state: str | None
    error: str | None
    cause: str | None
    output: dict[str, Any] | None
    transient: bool = False  # FAILED in a way another attempt may fix (tasks.workflow.Verdict)
    size: int | None = None  # the file's size in bytes (the execution's input)

    @property
    def duration_seconds(self) -> float | None:
        if self.started is None:
            return None
        end = self.stopped or datetime.now(self.started.tzinfo)
        return (end - self.started).total_seconds()


def source_of(execution_input: str | None) -> dict[str, Any]:
    try:
        data = json.loads(execution_input or "{}")
    except json.JSONDecodeError:
        return {}
    source = data.get("source") if isinstance(data, dict) else None
    return source if isinstance(source, dict) else {}


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    paginator = sfn.get_paginator("get_execution_history")
    for page in paginator.paginate(executionArn=arn):
        events.extend(page["events"])
    return events


def view(sfn: Any, arn: str) -> ExecutionView:
    desc = sfn.describe_execution(executionArn=arn)
    source = source_of(desc.get("input"))
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in _history(sfn, arn)
        if "stateEnteredEventDetails" in e
    ]
    status = desc["status"]
    verdict = classify(
        status,
        fail_state=fail_state_of(entered),
        error=desc.get("error"),
        cause=desc.get("cause"),
    )
    output = json.loads(desc["output"]) if desc.get("output") else None
    return ExecutionView(
        name=desc["name"],
        arn=arn,
        status=status,
        outcome=verdict.outcome,
        key=source.get("key"),
        etag=source.get("eTag"),
        route=route_of(entered),
        started=desc.get("startDate"),
        stopped=desc.get("stopDate"),
        current_state=entered[-1] if entered else None,
        error=desc.get("error"),
        cause=desc.get("cause"),
        output=output,
        transient=verdict.transient,
        size=source["size"] if isinstance(source.get("size"), int) else None,
    )


def execution_key(sfn: Any, arn: str) -> str | None:
    """The file key an execution is for (its input's ``source.key``), from one DescribeExecution."""
    key = source_of(sfn.describe_execution(executionArn=arn).get("input")).get("key")
    return str(key) if key else None


def list_arns(sfn: Any, state_machine_arn: str) -> list[dict[str, Any]]:
    paginator = sfn.get_paginator("list_executions")
    items: list[dict[str, Any]] = []
    for page in paginator.paginate(stateMachineArn=state_machine_arn):
        items.extend(page["executions"])
    return items


def message_of(cause: str | None) -> str | None:
    """The message of an execution's cause: a Lambda error's ``errorMessage``, else the cause."""
    try:
        document = json.loads(cause or "")
    except ValueError:
        return cause
    if isinstance(document, dict) and isinstance(document.get("errorMessage"), str):
        return str(document["errorMessage"])
    return None
