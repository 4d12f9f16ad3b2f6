"""Step Functions access for the trigger."""

from __future__ import annotations

import json
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

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
