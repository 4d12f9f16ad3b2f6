"""Names shared by the tasks, the embedded runtime (chute/) and the CDK app (infra/).

Everything that must be spelled the same on both sides lives here: environment variable names
read by the settings, the placeholder keys of ``workflows/pipeline.asl.json`` and the handler
paths of the functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from tasks.formats import COMPRESSION_EXTENSIONS, DATA_EXTENSIONS

# --- environment variables read by tasks.settings -------------------------------------------
ENV_STATE_MACHINE_ARN: Final = "CHUTE_STATE_MACHINE_ARN"
ENV_STAGING_BUCKET: Final = "CHUTE_STAGING_BUCKET"
ENV_OUTPUT_BUCKET: Final = "CHUTE_OUTPUT_BUCKET"
ENV_ARCHIVE_BUCKET: Final = "CHUTE_ARCHIVE_BUCKET"
ENV_QUARANTINE_BUCKET: Final = "CHUTE_QUARANTINE_BUCKET"
ENV_SUFFIXES: Final = "CHUTE_SUFFIXES"
ENV_PREFIX: Final = "CHUTE_PREFIX"
ENV_MAX_FILE_BYTES: Final = "CHUTE_MAX_FILE_BYTES"
ENV_PART_SIZE_BYTES: Final = "CHUTE_PART_SIZE_BYTES"
ENV_MAX_DECOMPRESSED_BYTES: Final = "CHUTE_MAX_DECOMPRESSED_BYTES"
ENV_MAX_DECOMPRESSION_RATIO: Final = "CHUTE_MAX_DECOMPRESSION_RATIO"
ENV_CONTRACTS_FILE: Final = "CHUTE_CONTRACTS_FILE"
ENV_OUTPUT_FORMATS: Final = "CHUTE_OUTPUT_FORMATS"
ENV_BATCH_SIZING: Final = "CHUTE_BATCH_SIZING"  # tasks.batch_sizing, JSON
ENV_FANOUT_PART_BYTES: Final = "CHUTE_FANOUT_PART_BYTES"
ENV_UPLOAD_ROLE_ARN: Final = "CHUTE_UPLOAD_ROLE_ARN"
ENV_GRANT_EXPIRES_SECONDS: Final = "CHUTE_GRANT_EXPIRES_SECONDS"
ENV_TENANT_CLAIM: Final = "CHUTE_TENANT_CLAIM"
ENV_MAX_REDRIVES: Final = "CHUTE_MAX_REDRIVES"
ENV_REDRIVE_EVERY_MINUTES: Final = "CHUTE_REDRIVE_EVERY_MINUTES"

# Set by the state machine on the Batch job (container overrides), read by batch/.
ENV_JOB_FILE: Final = "CHUTE_JOB_FILE"
ENV_JOB_TARGET: Final = "CHUTE_JOB_TARGET"
ENV_JOB_EXECUTION: Final = "CHUTE_JOB_EXECUTION"

# --- functions: logical name -> Lambda handler path -----------------------------------------
HANDLERS: Final[dict[str, str]] = {
    "trigger": "tasks.trigger.handler.handler",
    "validate": "tasks.validate.handler.handler",
    "convert": "tasks.convert.handler.handler",
    "archive": "tasks.archive.handler.handler",
    "quarantine": "tasks.quarantine.handler.handler",
    "grant": "tasks.grant.handler.handler",
    "redrive": "tasks.redrive.handler.handler",
    "fanout": "tasks.fanout.handler.handler",
}

TASK_STEPS: Final[tuple[str, ...]] = ("validate", "convert", "archive", "quarantine", "fanout")
"""The functions the state machine invokes (the others: the trigger, grant and redrive)."""

# --- the Batch job's container command (the Dockerfile's CMD is exactly this) ------------------
BATCH_COMMAND: Final[tuple[str, ...]] = ("python", "-m", "batch")

# --- placeholders in workflows/pipeline.asl.json ---------------------------------------------
PLACEHOLDERS: Final[tuple[str, ...]] = (
    "ValidateFunctionArn",
    "ConvertFunctionArn",
    "ArchiveFunctionArn",
    "QuarantineFunctionArn",
    "BatchJobQueueArn",
    "BatchJobDefinitionArn",
    "LargeFileThresholdBytes",
    "BatchTimeoutSeconds",
    "CompletionTopicArn",
    "CompletionEventBusArn",
    "FanOutFunctionArn",
    "FanOutThresholdBytes",
    "FanOutMaxConcurrency",
)

DEFAULT_SUFFIXES: Final[tuple[str, ...]] = tuple(
    f"{data}{compression}"
    for data in DATA_EXTENSIONS
    for compression in ("", *COMPRESSION_EXTENSIONS)
)
DEFAULT_LARGE_FILE_THRESHOLD_BYTES: Final = 256 * 1024 * 1024
DEFAULT_MAX_FILE_BYTES: Final = 50 * 1024**3
# Decompression limits (per file, enforced while streaming; docs/decisions.md 2026-12-03): the
# content of a compressed file may be up to 10x the largest file accepted, and may expand at most
# 500x -- checked only once more than the grace has come out, so small files never trip it.
DEFAULT_MAX_DECOMPRESSED_BYTES: Final = 10 * DEFAULT_MAX_FILE_BYTES
DEFAULT_MAX_DECOMPRESSION_RATIO: Final = 500
DECOMPRESSION_RATIO_GRACE_BYTES: Final = 64 * 1024 * 1024
DEFAULT_OUTPUT_FORMATS: Final = "jsonl,parquet"  # for files no data contract matches
DEFAULT_PART_SIZE_BYTES: Final = 8 * 1024 * 1024
"""The first parts of every output (they grow past 1,000 parts: tasks.s3_limits)."""
# One file across many workers (tasks.fanout): uncompressed files without a data contract of at
# least the threshold are cut into parts of about this many source bytes, converted at most
# this many at once by the convert function.
DEFAULT_FANOUT_THRESHOLD_BYTES: Final = 8 * 1024**3
DEFAULT_FANOUT_PART_BYTES: Final = 256 * 1024 * 1024
DEFAULT_FANOUT_MAX_CONCURRENCY: Final = 40
CONTRACTS_FILE_IN_IMAGE: Final = "/opt/chute/contracts/contracts.toml"

# --- the upload grant API (the stack's HTTP API and `chute up`'s twin serve the same route) -----
GRANT_ROUTE: Final = "/grants"
DEFAULT_TENANT_CLAIM: Final = "custom:tenant"  # a Cognito user pool's custom attribute
DEFAULT_GRANT_EXPIRES_SECONDS: Final = 15 * 60

# --- scheduled auto-redrive (the stack's schedule; tasks/redrive) -------------------------------
DEFAULT_MAX_REDRIVES: Final = 3
DEFAULT_REDRIVE_EVERY_MINUTES: Final = 15
DEFAULT_BATCH_TIMEOUT_SECONDS: Final = 4 * 3600

# --- function sizing (the CDK app and the embedded runtime both use this) ---------------------
FUNCTION_TIMEOUT_SECONDS: Final[dict[str, int]] = {
    "trigger": 60,
    "validate": 60,
    "convert": 900,
    # Archive and Quarantine move files of up to the maximum file size (50 GB) with a parallel
    # multipart copy (UploadPartCopy runs inside S3): Lambda's maximum, so one attempt finishes it.
    "archive": 900,
    "quarantine": 900,
    "grant": 10,
    "redrive": 300,
    "fanout": 900,  # the commit joins outputs of up to the largest file (server-side copies)
}
FUNCTION_MEMORY_MB: Final[dict[str, int]] = {
    "trigger": 256,
    "validate": 512,  # loads the data contracts (their patterns compiled natively)
    "convert": 1769,  # one full vCPU: conversion is CPU-bound
    "archive": 512,  # the parallel part copies: more memory is more CPU and network for them
    "quarantine": 512,
    "grant": 256,
    "redrive": 256,
    "fanout": 1024,  # plans cuts, joins the parts' footers; the bytes are copied inside S3
}

# --- which settings each function receives (the CDK app and the embedded runtime both use this) -
FUNCTION_SETTINGS: Final[dict[str, tuple[str, ...]]] = {
    "trigger": (ENV_STATE_MACHINE_ARN, ENV_SUFFIXES, ENV_PREFIX),
    "validate": (
        ENV_OUTPUT_BUCKET,
        ENV_SUFFIXES,
        ENV_MAX_FILE_BYTES,
        ENV_CONTRACTS_FILE,
        ENV_OUTPUT_FORMATS,
        ENV_MAX_DECOMPRESSED_BYTES,
        ENV_MAX_DECOMPRESSION_RATIO,
        ENV_BATCH_SIZING,
    ),
    "convert": (
        ENV_PART_SIZE_BYTES,
        ENV_CONTRACTS_FILE,
        ENV_MAX_DECOMPRESSED_BYTES,
        ENV_MAX_DECOMPRESSION_RATIO,
    ),
    "archive": (ENV_ARCHIVE_BUCKET,),
    "fanout": (ENV_FANOUT_PART_BYTES, ENV_CONTRACTS_FILE),
    "quarantine": (ENV_QUARANTINE_BUCKET, ENV_OUTPUT_BUCKET),
    "grant": (
        ENV_STAGING_BUCKET,
        ENV_PREFIX,
        ENV_SUFFIXES,
        ENV_MAX_FILE_BYTES,
        ENV_UPLOAD_ROLE_ARN,
        ENV_GRANT_EXPIRES_SECONDS,
        ENV_TENANT_CLAIM,
    ),
    "redrive": (ENV_STATE_MACHINE_ARN, ENV_MAX_REDRIVES, ENV_REDRIVE_EVERY_MINUTES),
}


def pipeline_settings(
    *,
    output_bucket: str,
    archive_bucket: str,
    quarantine_bucket: str,
    contracts_file: str,
    suffixes: tuple[str, ...] = DEFAULT_SUFFIXES,
    prefix: str = "",
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    max_decompression_ratio: int = DEFAULT_MAX_DECOMPRESSION_RATIO,
    output_formats: str = DEFAULT_OUTPUT_FORMATS,
    part_size_bytes: int = DEFAULT_PART_SIZE_BYTES,
    batch_sizing: str = "{}",
    fanout_part_bytes: int = DEFAULT_FANOUT_PART_BYTES,
) -> dict[str, str]:
    """The settings of the workflow's task functions and the Batch job, as the CDK stack and the
    embedded runtime both give them (values the deployment decides; chute's defaults for the
    rest). Each function gets its share through :func:`function_environment`."""
    return {
        ENV_OUTPUT_BUCKET: output_bucket,
        ENV_ARCHIVE_BUCKET: archive_bucket,
        ENV_QUARANTINE_BUCKET: quarantine_bucket,
        ENV_SUFFIXES: ",".join(suffixes),
        ENV_PREFIX: prefix,
        ENV_MAX_FILE_BYTES: str(max_file_bytes),
        ENV_PART_SIZE_BYTES: str(part_size_bytes),
        ENV_MAX_DECOMPRESSED_BYTES: str(max_decompressed_bytes),
        ENV_MAX_DECOMPRESSION_RATIO: str(max_decompression_ratio),
        ENV_CONTRACTS_FILE: contracts_file,
        ENV_OUTPUT_FORMATS: output_formats,
        ENV_BATCH_SIZING: batch_sizing,
        ENV_FANOUT_PART_BYTES: str(fanout_part_bytes),
    }


def function_environment(step: str, values: Mapping[str, str]) -> dict[str, str]:
    """The environment of ``step``'s function (or ``"convert"``: the Batch job): exactly the
    settings FUNCTION_SETTINGS gives it, from ``values``; ValueError names any missing."""
    missing = sorted(set(FUNCTION_SETTINGS[step]) - set(values))
    if missing:
        raise ValueError(f"{step}: no value for settings {missing}")
    return {name: values[name] for name in FUNCTION_SETTINGS[step]}


# --- the Batch job definition's retry strategy: retry only transient exits (EX_TEMPFAIL = 75);
# the explicit catch-all EXIT matters, unmatched failures would otherwise be retried.
BATCH_RETRY_STRATEGY: Final[dict[str, object]] = {
    "attempts": 3,
    "evaluateOnExit": [
        {"onExitCode": "75", "action": "RETRY"},
        {"onExitCode": "*", "action": "EXIT"},
    ],
}


def batch_task_timeout_seconds(attempt_seconds: int) -> int:
    """The workflow's timeout for the whole Batch task: every attempt the retry strategy allows,
    plus 10 minutes for queueing and container start."""
    attempts = int(str(BATCH_RETRY_STRATEGY["attempts"]))
    return attempts * attempt_seconds + 600


def workflow_substitutions(
    *,
    function_arns: Mapping[str, str],
    batch_job_queue_arn: str,
    batch_job_definition_arn: str,
    large_file_threshold_bytes: int,
    batch_attempt_seconds: int,
    completion_topic_arn: str,
    completion_event_bus_arn: str,
    fanout_threshold_bytes: int = DEFAULT_FANOUT_THRESHOLD_BYTES,
    fanout_max_concurrency: int = DEFAULT_FANOUT_MAX_CONCURRENCY,
) -> dict[str, str]:
    """Values for every ${Placeholder} of the workflow file (keys: PLACEHOLDERS), from the CDK
    stack's tokens or the embedded runtime's ARNs; ``function_arns`` is keyed by step."""
    return {
        "ValidateFunctionArn": function_arns["validate"],
        "ConvertFunctionArn": function_arns["convert"],
        "ArchiveFunctionArn": function_arns["archive"],
        "QuarantineFunctionArn": function_arns["quarantine"],
        "BatchJobQueueArn": batch_job_queue_arn,
        "BatchJobDefinitionArn": batch_job_definition_arn,
        "LargeFileThresholdBytes": str(large_file_threshold_bytes),
        "BatchTimeoutSeconds": str(batch_task_timeout_seconds(batch_attempt_seconds)),
        "CompletionTopicArn": completion_topic_arn,
        "CompletionEventBusArn": completion_event_bus_arn,
        "FanOutFunctionArn": function_arns["fanout"],
        "FanOutThresholdBytes": str(fanout_threshold_bytes),
        "FanOutMaxConcurrency": str(fanout_max_concurrency),
    }


# --- completion events (EventBridge; the workflow's Announce* states, docs/events.md) -------------
EVENT_SOURCE: Final = "chute"
DEFAULT_EVENT_BUS_NAME: Final = "chute-events"
EVENT_DETAIL_TYPES: Final[dict[str, str]] = {
    "converted": "File Converted",
    "quarantined": "File Quarantined",
    "stale": "File Stale",
    "replaced": "File Replaced",
}
"""outcome -> the event's detail-type (one event per file outcome)."""


# --- custom metrics: CloudWatch Embedded Metric Format, printed by tasks.metrics ----------------
# The dashboard must ask for exactly these dimensions: a metric is namespace + name + dimensions.
METRICS_NAMESPACE: Final = "chute"
METRICS_DIMENSIONS: Final[dict[str, str]] = {"service": "chute"}
METRIC_FILES_PROCESSED: Final = "FilesProcessed"  # Count: one per original archived (both routes)
METRIC_BYTES_PROCESSED: Final = "BytesProcessed"  # Bytes: the archived original's size
METRIC_FILES_QUARANTINED: Final = "FilesQuarantined"  # Count: one per original quarantined
METRIC_PROCESSING_SECONDS: Final = "ProcessingSeconds"  # execution start to archived, per route
METRIC_EXECUTIONS_REDRIVEN: Final = "ExecutionsRedriven"  # Count: by the scheduled auto-redrive
METRIC_REDRIVES_EXHAUSTED: Final = "RedrivesExhausted"  # Count: failed again at the redrive cap
# Dimensions added to ``METRICS_DIMENSIONS``: the route (lambda | batch) on FilesProcessed,
# BytesProcessed and ProcessingSeconds; the error name on FilesQuarantined. Both are small sets.
ROUTES: Final[tuple[str, ...]] = ("lambda", "batch", "fanout")
