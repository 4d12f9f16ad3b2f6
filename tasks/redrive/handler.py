"""Lambda entry point of the scheduled auto-redrive (an EventBridge schedule invokes it)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from tasks import log, metrics
from tasks.adapters.sfn import FailedExecutions
from tasks.entry import lambda_handler, per_container
from tasks.redrive.domain import redrive_failed
from tasks.settings import RedriveSettings


@per_container
def _settings() -> RedriveSettings:
    return RedriveSettings.from_mapping(os.environ)


@per_container
def _executions() -> FailedExecutions:
    return FailedExecutions(_settings().state_machine_arn)


@lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    report = redrive_failed(_executions(), _settings(), datetime.now(UTC), metrics.Recorder())
    log.info(
        "redrive run finished",
        redriven=len(report.redriven),
        restarted=len(report.restarted),
        capped=len(report.capped),
        skipped=len(report.skipped),
    )
    return {
        "redriven": report.redriven,
        "restarted": report.restarted,
        "capped": report.capped,
        "skipped": report.skipped,
    }
