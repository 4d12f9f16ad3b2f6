"""Lambda entry point of the trigger (SQS event source mapping with ReportBatchItemFailures)."""

from __future__ import annotations

import os
from typing import Any

from tasks.adapters.sfn import ExecutionStarter
from tasks.entry import lambda_handler, per_container
from tasks.models import ModelError
from tasks.settings import TriggerSettings
from tasks.trigger.domain import process_batch


@per_container
def _settings() -> TriggerSettings:
    return TriggerSettings.from_mapping(os.environ)


@per_container
def _starter() -> ExecutionStarter:
    return ExecutionStarter(_settings().state_machine_arn)


@lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    records = event.get("Records")
    if not isinstance(records, list):
        raise ModelError("not an SQS event: no Records list")
    failed = process_batch(records, _starter(), _settings())
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
