"""Move a rejected original to the quarantine bucket (same key) with ``<key>.error.json`` beside it.

Order: copy, write the report, delete the original (:func:`tasks.moves.move` writing the report
before its delete), so a crash at any point leaves the file in at least one place and running the
step again completes the move. The step never fails because the file is gone or was replaced: the
report is still written and says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from tasks import fence, log, moves
from tasks.errors import Replaced, StaleEventError
from tasks.fence import Condition, Stamp
from tasks.formats import keys
from tasks.metrics import NOT_RECORDED, Sink
from tasks.models import ModelError, ObjectRef
from tasks.moves import MoveOutcome, MoveResult
from tasks.settings import QuarantineSettings

MAX_CAUSE_BYTES = 32 * 1024
MAX_MESSAGE_BYTES = 4 * 1024

FileStatus = Literal["quarantined", "not_found", "changed"]

_NOTES: dict[FileStatus, str] = {
    "quarantined": "the original is stored beside this report",
    "not_found": "the original was not found in staging nor in quarantine",
    "changed": "staging now holds a different object under this key; it was left in place",
}


_STATUS: dict[MoveOutcome, FileStatus] = {
    "moved": "quarantined",
    "already_moved": "quarantined",  # by an earlier attempt of this step
    "not_found": "not_found",
    "changed": "changed",
}


@dataclass(frozen=True)
class JobFailure:
    """Where a rejecting Batch job left the error it raised (the workflow's ``jobFailure``,
    built by the ``BatchConvertRejected`` state as ``tasks.keys.batch_failure_key`` in the
    output bucket): ``{"error", "cause", "exitCode", "execution", "key"}``."""

    bucket: str
    key: str

    @classmethod
    def from_payload(cls, data: Any) -> JobFailure | None:
        """None for null (every rejection but the Batch job's)."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ModelError("jobFailure must be an object or null")
        bucket, key = data.get("bucket"), data.get("key")
        if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
            raise ModelError("jobFailure needs a bucket and a key")
        return cls(bucket=bucket, key=key)


class Store(moves.Store, Protocol):
    def put_json(
        self,
        bucket: str,
        key: str,
        document: dict[str, Any],
        *,
        metadata: dict[str, str] | None = None,
        condition: Condition | None = None,
    ) -> None: ...

    def get_json(self, bucket: str, key: str) -> Any | None: ...


def quarantine(
    source: ObjectRef,
    error_name: str,
    cause: str,
    failed_state: str,
    execution: str,
    store: Store,
    settings: QuarantineSettings,
    now: datetime | None = None,
    job_failure: JobFailure | None = None,
    metrics: Sink = NOT_RECORDED,
) -> dict[str, str]:
    """Quarantine ``source`` and report why; returns ``{"bucket", "key", "reportKey"}``.

    A Batch job's failure reaches the workflow as the job's description (``cause``); the error
    the job raised is read from where the workflow says it left it (``job_failure``), so the
    report names it and keeps its details exactly as on the Lambda route."""
    bucket = settings.quarantine_bucket
    report_key = keys.report_key(source.key)
    left_by_job = _job_error(store, settings, job_failure)
    message: str | None
    if left_by_job is not None:
        error_name, message = left_by_job
    else:
        message = lambda_error_message(cause)

    stamp = Stamp.of(source)

    def write_report(result: MoveResult) -> None:
        report = build_report(
            source=source,
            status=_STATUS[result.outcome],
            error_name=error_name,
            cause=cause,
            message=message,
            failed_state=failed_state,
            execution=execution,
            bucket=bucket,
            now=now or datetime.now(UTC),
        )
        fence.publish(
            lambda: store.exists(bucket, report_key),
            lambda condition: store.put_json(
                bucket, report_key, report, metadata=stamp.metadata(), condition=condition
            ),
            stamp,
            f"s3://{bucket}/{report_key}",
        )

    result = moves.move(source, bucket, store, before_delete=write_report)
    if left_by_job is not None and job_failure is not None:
        # the report has it now (a retry of this step finds none and keeps the job's cause)
        store.delete(ObjectRef(bucket=job_failure.bucket, key=job_failure.key, size=0))
    if result.outcome == "moved":  # not "already_moved": an earlier attempt counted that one
        metrics.file_quarantined(error_name)
    log.warning(
        "file quarantined",
        status=_STATUS[result.outcome],
        error=error_name,
        failed_state=failed_state,
        bucket=bucket,
        key=source.key,
    )
    return {"bucket": bucket, "key": source.key, "reportKey": report_key}


def relay(store: Store, settings: QuarantineSettings, job_failure: JobFailure) -> None:
    """Raise again the error a Batch job left where ``job_failure`` says (exits 66 and 73: a
    StaleEventError or Replaced), with its message, and delete the document: the Batch route
    then ends exactly as the Lambda route does. Returns when there is no such error to relay."""
    left = _job_error(store, settings, job_failure)
    relayed = {cls.__name__: cls for cls in (*StaleEventError.__subclasses__(), Replaced)}
    if left is None or left[0] not in relayed:
        log.warning("no job error to relay", bucket=job_failure.bucket, key=job_failure.key)
        return
    name, message = left
    store.delete(ObjectRef(bucket=job_failure.bucket, key=job_failure.key, size=0))
    raise relayed[name](message)


def _job_error(
    store: Store, settings: QuarantineSettings, job_failure: JobFailure | None
) -> tuple[str, str] | None:
    """``(error name, message)`` a rejecting Batch job left where ``job_failure`` says, if any.
    Only the output bucket is read (the function may read nothing else): a location elsewhere
    is logged and ignored, the report keeps the job's description."""
    if job_failure is None:
        return None
    if job_failure.bucket != settings.output_bucket:
        log.warning("job failure not read", bucket=job_failure.bucket, key=job_failure.key)
        return None
    document = store.get_json(job_failure.bucket, job_failure.key)
    if not isinstance(document, dict):
        return None
    name, message = document.get("error"), document.get("cause")
    if not isinstance(name, str) or not name or not isinstance(message, str):
        return None
    return name, message


def build_report(
    *,
    source: ObjectRef,
    status: FileStatus,
    error_name: str,
    cause: str,
    message: str | None,
    failed_state: str,
    execution: str,
    bucket: str,
    now: datetime,
) -> dict[str, Any]:
    """The ``<key>.error.json`` document: why the file was rejected and where it is.
    ``message``: the error's own message (a Lambda error's ``errorMessage``, or what a Batch job
    left), which may carry a contract violation's problems."""
    cause_text, cause_truncated = truncate_utf8(public_cause(cause), MAX_CAUSE_BYTES)
    report: dict[str, Any] = {
        "error": error_name,
        "message": None,
        "cause": cause_text,
        "causeTruncated": cause_truncated,
        "causeBytes": len(cause.encode("utf-8")),
        "failedState": failed_state,
        "execution": execution,
        "time": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": source.to_dict(),
        "file": {
            "status": status,
            "note": _NOTES[status],
            "bucket": bucket if status == "quarantined" else None,
            "key": source.key if status == "quarantined" else None,
        },
    }
    if message is not None:
        report["message"] = truncate_utf8(message, MAX_MESSAGE_BYTES)[0]
        details = contract_details(message)
        if details is not None:
            report["contract"] = details
    return report


_JOB_FIELDS = ("jobId", "jobName", "status", "statusReason", "createdAt", "startedAt", "stoppedAt")


def public_cause(cause: str) -> str:
    """What of a failure's cause a report may show: never a stack trace, an environment or a
    path of the machine that ran the step. A Lambda error keeps its type and message; a Batch
    job's description keeps its id, status, reason, timestamps, attempts and exit codes; any
    other cause is kept as it is (Step Functions' own causes are plain sentences)."""
    if not cause.startswith("{"):
        return cause
    try:
        document = json.loads(cause)
    except ValueError:
        return cause
    if not isinstance(document, dict):
        return cause
    if "errorType" in document or "errorMessage" in document:
        kept = {k: document[k] for k in ("errorType", "errorMessage") if k in document}
        return json.dumps(kept, ensure_ascii=False)
    if "JobId" in document or "jobId" in document:
        return json.dumps(_batch_summary(document), ensure_ascii=False)
    return cause


def _batch_summary(job: dict[str, Any]) -> dict[str, Any]:
    def get(name: str) -> Any:
        return job.get(name[0].upper() + name[1:], job.get(name))

    summary = {name: get(name) for name in _JOB_FIELDS if get(name) is not None}
    container = get("container")
    if isinstance(container, dict):
        exit_code = container.get("ExitCode", container.get("exitCode"))
        if exit_code is not None:
            summary["exitCode"] = exit_code
        stream = container.get("LogStreamName", container.get("logStreamName"))
        if stream:
            summary["logStreamName"] = stream
    attempts = get("attempts")
    if isinstance(attempts, list):
        codes = []
        for attempt in attempts:
            inner = (
                attempt.get("Container", attempt.get("container"))
                if isinstance(attempt, dict)
                else None
            )
            codes.append(
                inner.get("ExitCode", inner.get("exitCode")) if isinstance(inner, dict) else None
            )
        summary["attempts"] = len(attempts)
        summary["attemptExitCodes"] = codes
    return summary


def contract_details(message: str) -> dict[str, Any] | None:
    """A ContractViolation's message is a JSON document (contract, counts, the first problems
    with row, column, value and reason): keep it structured in the report."""
    if not message.startswith("{"):
        return None
    try:
        document = json.loads(message)
    except ValueError:
        return None
    if isinstance(document, dict) and isinstance(document.get("problems"), list):
        return document
    return None


def lambda_error_message(cause: str) -> str | None:
    """The ``errorMessage`` of a Lambda error cause (a JSON document), if that's what it is."""
    if not cause.startswith("{"):
        return None
    try:
        document = json.loads(cause)
    except ValueError:
        return None  # e.g. a cause that was already truncated upstream
    message = document.get("errorMessage") if isinstance(document, dict) else None
    return message if isinstance(message, str) else None


def truncate_utf8(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` UTF-8 bytes (never inside a character), and whether it
    was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", errors="ignore"), True
