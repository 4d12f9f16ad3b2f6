"""The Batch container's entrypoint: convert one large file with the same code as the Lambda.

The container command is ``python -m batch`` (``tasks.names.BATCH_COMMAND``). The job's
parameters come from the environment the state machine sets (container overrides):

    CHUTE_JOB_FILE        FileSpec JSON (the validated source and how to read it)
    CHUTE_JOB_TARGET      Target JSON (where the JSON Lines go)
    CHUTE_JOB_EXECUTION   the execution name (the correlation id of every log line)
    CHUTE_PART_SIZE_BYTES and the convert function's other settings

A Batch failure reaches the workflow only as ``States.TaskFailed`` with the DescribeJobs JSON
as cause, so the outcome is told by the exit code (the job definition's
``retryStrategy.evaluateOnExit`` retries only ``ExitCode.TEMPFAIL``). On failure one JSON line
``{"error": <class name>, "cause": <message>, "exitCode": <code>}`` goes to stderr.

Exit codes: ``tasks.workflow.ExitCode`` (sysexits.h values; the same table is in
docs/step-events.md):

    code  ExitCode   meaning                                     workflow
    ----  ---------  ------------------------------------------  ---------------------------
       0  OK         converted                                   Archive
      64  USAGE      bad job parameters or settings (EX_USAGE)   Fail, file stays in staging
      65  DATAERR    the file is bad: a PermanentError           Quarantine
      66  NOINPUT    source gone or changed: a StaleEventError   Stale (named), nothing moved
      70  SOFTWARE   unexpected error (EX_SOFTWARE)              Fail, file stays in staging
      73  CANTCREAT  a later upload of another key owns the      Archive, then Replaced
                     outputs: Replaced (EX_CANTCREAT)
      75  TEMPFAIL   a TransientError, or stopped (SIGTERM)     Batch retries, then Fail
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from tasks import cores, log, names
from tasks.adapters.s3 import S3Store
from tasks.convert.domain import convert
from tasks.data_contracts.config import ContractConfigError, load_contracts
from tasks.errors import PermanentError, Replaced, StaleEventError, TransientError
from tasks.formats import keys
from tasks.models import FileSpec, ModelError, Plan, Target
from tasks.settings import ConvertSettings, SettingsError
from tasks.workflow import ExitCode

USAGE = f"""\
usage: python -m batch [--help]

Convert one file for the chute pipeline (the AWS Batch job). Parameters come from the environment:
  {names.ENV_JOB_FILE:<22}  FileSpec JSON
  {names.ENV_JOB_TARGET:<22}  Target JSON
  {names.ENV_JOB_EXECUTION:<22}  execution name (log correlation id)
  {names.ENV_PART_SIZE_BYTES:<22}  multipart part size in bytes (optional)

exit codes: {ExitCode.OK} converted, {ExitCode.USAGE} bad parameters, \
{ExitCode.DATAERR} bad file,
  {ExitCode.NOINPUT} source gone or changed, {ExitCode.SOFTWARE} unexpected error, \
{ExitCode.CANTCREAT} outputs owned by a later upload,
  {ExitCode.TEMPFAIL} transient
"""

NAMED_EXITS = frozenset({ExitCode.DATAERR, ExitCode.NOINPUT, ExitCode.CANTCREAT})
"""The exits whose error the job leaves at ``keys.batch_failure_key`` for the workflow."""


class UsageError(Exception):
    """The job was started with missing or malformed parameters."""


def _json_param(environ: Mapping[str, str], name: str) -> Any:
    raw = environ.get(name, "").strip()
    if not raw:
        raise UsageError(f"{name} is required")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{name} is not valid JSON: {exc}") from exc


def _job(environ: Mapping[str, str]) -> tuple[Plan, str, ConvertSettings]:
    execution = environ.get(names.ENV_JOB_EXECUTION, "").strip()
    if not execution:
        raise UsageError(f"{names.ENV_JOB_EXECUTION} is required")
    plan = Plan(
        file=FileSpec.from_dict(_json_param(environ, names.ENV_JOB_FILE)),
        target=Target.from_dict(_json_param(environ, names.ENV_JOB_TARGET)),
    )
    return plan, execution, ConvertSettings.from_mapping(environ)


class Stopped(BaseException):
    """AWS Batch stopped the job (SIGTERM: the attempt timeout, TerminateJob, a scale-in). The
    conversion unwinds, which aborts its multipart uploads, within the stop timeout.

    A BaseException, as KeyboardInterrupt is: the signal handler raises it wherever the main
    thread is, often inside an S3 request, and botocore turns any Exception raised there into an
    HTTPClientError that its retry mode retries -- the stop would be lost and the job run on."""


def stop_on_sigterm() -> None:
    """Turn SIGTERM into :class:`Stopped` in the main thread (``python -m batch`` calls this;
    the default would kill the process and leave multipart uploads behind)."""

    def stop(signum: int, frame: object) -> None:
        raise Stopped(f"stopped by signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, stop)


def _exit_code(exc: Exception | Stopped) -> int:
    if isinstance(exc, UsageError | ModelError | SettingsError | ContractConfigError):
        return ExitCode.USAGE
    if isinstance(exc, Stopped):
        return ExitCode.TEMPFAIL  # not the file's fault: rerunnable
    if isinstance(exc, PermanentError):
        return ExitCode.DATAERR
    if isinstance(exc, StaleEventError):
        return ExitCode.NOINPUT
    if isinstance(exc, Replaced):
        return ExitCode.CANTCREAT
    if isinstance(exc, TransientError):
        return ExitCode.TEMPFAIL
    return ExitCode.SOFTWARE


def _fail(exc: Exception | Stopped) -> int:
    code = _exit_code(exc)
    name = type(exc).__name__
    if code == ExitCode.SOFTWARE:
        log.get_logger().exception("batch job crashed", error=name, exit_code=code)
    else:
        log.error("batch job failed", error=name, cause=str(exc), exit_code=code)
    report = {"error": name, "cause": str(exc), "exitCode": code}
    print(json.dumps(report, ensure_ascii=False), file=sys.stderr, flush=True)
    return code


def _leave_failure(
    store: S3Store, plan: Plan, execution: str, exc: Exception | Stopped, code: ExitCode
) -> None:
    """Leave the error for the workflow (keys.batch_failure_key): the job's exit code says where
    the workflow goes, this says which error and why — the Quarantine step reads it into its
    report (exit 65), the NameBatchFailure state raises it again (66, 73). Best effort: without
    it the workflow still has the job's description."""
    key = keys.batch_failure_key(execution)
    document = {
        "error": type(exc).__name__,
        "cause": str(exc),
        "exitCode": int(code),
        "execution": execution,
        "key": plan.file.ref.key,
    }
    try:
        store.put_json(plan.target.bucket, key, document)
    except Exception as error:  # the exit code still says quarantine
        log.warning("failure not left", bucket=plan.target.bucket, key=key, error=str(error))


def main(argv: Sequence[str], environ: Mapping[str, str], *, store: S3Store | None = None) -> int:
    """Run the job described by ``environ``; return the process exit code (see EXIT_*)."""
    args = list(argv)
    if args in (["--help"], ["-h"]):
        print(USAGE, end="")
        return ExitCode.OK
    job: tuple[Plan, str] | None = None
    try:
        if args:
            raise UsageError(f"unexpected arguments: {' '.join(args)}")
        plan, execution, settings = _job(environ)
        job = plan, execution
        log.bind(execution=execution, key=plan.file.ref.key)
        store = store or S3Store()
        contracts = load_contracts(settings.contracts_file) if settings.contracts_file else None
        output = convert(plan, store, settings, contracts)
    except (Exception, Stopped) as exc:
        code = _fail(exc)
        if code in NAMED_EXITS and job is not None:
            _leave_failure(store or S3Store(), *job, exc, ExitCode(code))
        return code
    log.info(
        "batch job finished",
        cores=cores.available(),
        rows=output.rows,
        bytes=output.bytes,
        schema=output.schema,
        widened=list(output.widened),
    )
    return ExitCode.OK
