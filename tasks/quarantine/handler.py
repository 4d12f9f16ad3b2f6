"""Lambda entry point of the Quarantine step (reached from every Catch of a permanent error),
and of NameBatchFailure (``{"relay": {bucket, key}}``: raise again the error a Batch job left)."""

from __future__ import annotations

import os
from typing import Any

from tasks import log, metrics
from tasks.adapters.s3 import S3Store
from tasks.entry import lambda_handler, per_container
from tasks.models import ModelError, ObjectRef
from tasks.quarantine.domain import JobFailure, quarantine, relay
from tasks.settings import QuarantineSettings


@per_container
def _settings() -> QuarantineSettings:
    return QuarantineSettings.from_mapping(os.environ)


@per_container
def _store() -> S3Store:
    return S3Store()


@lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    if "relay" in event:  # the NameBatchFailure state: raise the job's error again
        job_failure = JobFailure.from_payload(event["relay"])
        if job_failure is not None:
            relay(_store(), _settings(), job_failure)
        return {"relayed": False}
    execution = str(event.get("execution") or "")
    error = event.get("error")
    error = error if isinstance(error, dict) else {}
    source = ObjectRef.from_dict(event.get("source"))
    log.bind(key=source.key)
    try:
        job_failure = JobFailure.from_payload(event.get("jobFailure"))
    except ModelError as exc:  # the file is quarantined all the same, with the job's cause
        log.warning("job failure ignored", reason=str(exc))
        job_failure = None
    return quarantine(
        source,
        error_name=str(error.get("Error") or "Unknown"),
        cause=str(error.get("Cause") or ""),
        failed_state=str(event.get("failedState") or "unknown"),
        execution=execution,
        store=_store(),
        settings=_settings(),
        job_failure=job_failure,
        metrics=metrics.Recorder(),
    )
