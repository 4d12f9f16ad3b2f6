"""Step Functions access for the trigger and the scheduled auto-redrive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tasks.models import FailedExecution
from tasks.workflow import rerun_name

StartResult = Literal["started", "exists"]


class ExecutionStarter:
    """The trigger's port to Step Functions."""

    def __init__(self, state_machine_arn: str, client: Any | None = None) -> None:
        self._arn = state_machine_arn
        self._client = client or boto3.client(
            "stepfunctions", config=Config(retries={"mode": "standard", "max_attempts": 5})
        )

    def start(self, name: str, payload: dict[str, Any]) -> StartResult:
        try:
            self._client.start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(payload)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return "exists"
            raise
        return "started"


# RedriveExecution refusals that mean "not this one" (other errors propagate); `chute rerun`
# starts a new execution instead.
NOT_REDRIVABLE = {"ExecutionNotRedrivable", "ExecutionLimitExceeded"}


class FailedExecutions:
    """The auto-redrive's port to Step Functions: failed executions, their Fail state and
    redrive count, RedriveExecution (on the execution's ARN: it resumes that execution) and,
    for an execution that ended in a Fail state, StartExecution of its restart."""

    def __init__(self, state_machine_arn: str, client: Any | None = None) -> None:
        self._arn = state_machine_arn
        self._client = client or boto3.client(
            "stepfunctions", config=Config(retries={"mode": "standard", "max_attempts": 5})
        )

    def failed_since(self, since: datetime) -> Iterator[FailedExecution]:
        paginator = self._client.get_paginator("list_executions")
        for status in ("FAILED", "TIMED_OUT"):
            for page in paginator.paginate(stateMachineArn=self._arn, statusFilter=status):
                items = page["executions"]
                for item in items:
                    if item["startDate"] >= since:
                        yield self._failed(item["executionArn"])
                if items and items[-1]["startDate"] < since:
                    break  # newest first: the rest is older

    def _failed(self, arn: str) -> FailedExecution:
        desc = self._client.describe_execution(executionArn=arn)
        return FailedExecution(
            arn=arn,
            name=desc["name"],
            status=desc["status"],
            stopped=desc.get("stopDate") or desc["startDate"],
            error=desc.get("error"),
            cause=desc.get("cause"),
            fail_state=self._fail_state(arn),
            redrive_count=int(desc.get("redriveCount") or 0),
        )

    def _fail_state(self, arn: str) -> str | None:
        """The Fail state entered last, from the end of the history (a few events back)."""
        events = self._client.get_execution_history(
            executionArn=arn, reverseOrder=True, maxResults=5
        )["events"]
        for event in events:
            if event["type"] == "FailStateEntered":
                return str(event["stateEnteredEventDetails"]["name"])
        return None

    def rerun_exists(self, execution: FailedExecution) -> bool:
        arn = execution.arn.rsplit(":", 1)[0] + ":" + rerun_name(execution.name)
        try:
            self._client.describe_execution(executionArn=arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return False
            raise
        return True

    def redrive(self, execution: FailedExecution) -> bool:
        try:
            self._client.redrive_execution(executionArn=execution.arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_REDRIVABLE:
                return False
            raise
        return True

    def restart(self, execution: FailedExecution) -> bool:
        """StartExecution named ``rerun_name(name)`` with the original input (idempotent: the
        name is fixed); False if it exists already."""
        original = self._client.describe_execution(executionArn=execution.arn)
        try:
            self._client.start_execution(
                stateMachineArn=self._arn,
                name=rerun_name(execution.name),
                input=original["input"],
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                return False
            raise
        return True
