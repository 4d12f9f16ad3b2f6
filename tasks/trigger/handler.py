"""Lambda entry point of the trigger (SQS event source mapping with ReportBatchItemFailures)."""

from __future__ import annotations

import functools
import os
from typing import Any

from tasks.adapters.sfn import ExecutionStarter
from tasks.models import ModelError
from tasks.settings import TriggerSettings
from tasks.trigger.domain import process_batch


@functools.cache
def _settings() -> TriggerSettings:
    return TriggerSettings.from_mapping(os.environ)


@functools.cache
def _starter() -> ExecutionStarter:
    return ExecutionStarter(_settings().state_machine_arn)


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    records = event.get("Records")
    if not isinstance(records, list):
        raise ModelError("not an SQS event: no Records list")
    failed = process_batch(records, _starter(), _settings())
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
