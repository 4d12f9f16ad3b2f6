"""Facts about ``workflows/pipeline.asl.json`` that code needs, spelled once.

- :class:`State`: every state of the workflow (tests: exactly the file's states; the Fail ones).
- :class:`ExitCode`: the Batch container's exit codes, what each means and where the workflow
  goes after it (tests: the ASL's ``ClassifyBatchFailure`` choices and the job definition's
  ``retryStrategy``, ``tasks.names.BATCH_RETRY_STRATEGY``).
- :func:`classify`: an execution's outcome as operators and the auto-redrive see it, from its
  status, error, cause and the Fail state it ended in. Used by the CLI (``chute status/show/rerun``
  and ``chute run``'s table) and by the scheduled auto-redrive.

Pure: no AWS calls, nothing read at import but this module's own tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final

from tasks.errors import TransientError


class State(StrEnum):
    """The states of ``workflows/pipeline.asl.json`` (value = the state's name)."""

    LOAD_CONFIG = "LoadConfig"
    VALIDATE = "Validate"
    ROUTE_BY_SIZE = "RouteBySize"
    CONVERT_IN_LAMBDA = "ConvertInLambda"
    CONVERT_IN_BATCH = "ConvertInBatch"
    BATCH_SUBMIT_FAILED = "BatchSubmitFailed"
    CHECK_BATCH_CAUSE = "CheckBatchCause"
    INSPECT_BATCH_FAILURE = "InspectBatchFailure"
    CLASSIFY_BATCH_FAILURE = "ClassifyBatchFailure"
    NAME_BATCH_FAILURE = "NameBatchFailure"
    BATCH_FAILED = "BatchFailed"
    PLAN_PARTS = "PlanParts"
    SPLITTABLE = "Splittable"
    CONVERT_PARTS = "ConvertParts"
    COMMIT_PARTS = "CommitParts"
    ANOTHER_ROUND = "AnotherRound"
    NEXT_ROUND = "NextRound"
    TOO_MANY_ROUNDS = "TooManyRounds"
    FANNED_OUT = "FannedOut"
    FAN_OUT_REJECTED = "FanOutRejected"
    ABANDON_FAN_OUT = "AbandonFanOut"
    FAN_OUT_FAILED = "FanOutFailed"
    ARCHIVE = "Archive"
    ARCHIVE_REPLACED = "ArchiveReplaced"
    SUMMARIZE = "Summarize"
    NOTIFY_SUCCEEDED = "NotifySucceeded"
    ANNOUNCE_CONVERTED = "AnnounceConverted"
    SUCCEEDED = "Succeeded"
    VALIDATE_REJECTED = "ValidateRejected"
    LAMBDA_CONVERT_REJECTED = "LambdaConvertRejected"
    BATCH_CONVERT_REJECTED = "BatchConvertRejected"
    QUARANTINE = "Quarantine"
    SUMMARIZE_REJECTION = "SummarizeRejection"
    NOTIFY_REJECTED = "NotifyRejected"
    ANNOUNCE_QUARANTINED = "AnnounceQuarantined"
    REJECTED = "Rejected"
    ANNOUNCE_STALE = "AnnounceStale"
    STALE = "Stale"
    ANNOUNCE_REPLACED = "AnnounceReplaced"
    REPLACED = "Replaced"


RERUN_SUFFIX: Final = "-rerun"
"""The suffix of the new execution that restarts one (``chute rerun``, the auto-redrive) where a
redrive can't help: it ended in a Fail state, where a redrive would resume and fail again."""


def rerun_name(name: str) -> str:
    """The name of the new execution that restarts ``name`` (at most 80 characters)."""
    return f"{name[: 80 - len(RERUN_SUFFIX)]}{RERUN_SUFFIX}"


FAIL_STATES: Final[frozenset[State]] = frozenset(
    {
        State.BATCH_SUBMIT_FAILED,
        State.BATCH_FAILED,
        State.FAN_OUT_FAILED,
        State.REJECTED,
        State.STALE,
        State.REPLACED,
    }
)
"""The states of type Fail: where an execution that did not succeed may end."""

ROUTES: Final[Mapping[State, str]] = {
    State.CONVERT_IN_LAMBDA: "lambda",
    State.CONVERT_IN_BATCH: "batch",
    State.CONVERT_PARTS: "fanout",
}
"""The conversion states and the route each one is (``tasks.names.ROUTES``)."""


class ExitCode(IntEnum):
    """The Batch container's exit codes (sysexits.h values; ``batch/entrypoint.py`` returns them).

    A Batch failure reaches the workflow only as ``States.TaskFailed`` with the job's
    description as cause, so the exit code is how the workflow tells the outcome apart.
    """

    OK = 0
    USAGE = 64
    DATAERR = 65
    NOINPUT = 66
    SOFTWARE = 70
    CANTCREAT = 73
    TEMPFAIL = 75

    @property
    def meaning(self) -> str:
        return _EXIT_MEANINGS[self]

    @property
    def retried_by_batch(self) -> bool:
        """The job definition's retry strategy starts another attempt (the only such code)."""
        return self is ExitCode.TEMPFAIL

    @property
    def next_state(self) -> State:
        """Where the workflow goes once the job ended with this code (after Batch's own retries):
        ``ConvertInBatch``'s Next for OK, ``ClassifyBatchFailure``'s choice for the others."""
        return _EXIT_NEXT_STATES[self]


_EXIT_MEANINGS: Final[Mapping[ExitCode, str]] = {
    ExitCode.OK: "converted: the target object is written",
    ExitCode.USAGE: "bad job parameters or settings (EX_USAGE)",
    ExitCode.DATAERR: "the file is bad: a PermanentError (EX_DATAERR)",
    ExitCode.NOINPUT: "the source is gone or changed: a StaleEventError (EX_NOINPUT)",
    ExitCode.SOFTWARE: "unexpected error: a bug or a misconfiguration (EX_SOFTWARE)",
    ExitCode.CANTCREAT: "the outputs belong to a later upload of another key: Replaced"
    " (EX_CANTCREAT)",
    ExitCode.TEMPFAIL: "transient: a TransientError, or the job was stopped (EX_TEMPFAIL)",
}
_EXIT_NEXT_STATES: Final[Mapping[ExitCode, State]] = {
    ExitCode.OK: State.ARCHIVE,
    ExitCode.USAGE: State.BATCH_FAILED,
    ExitCode.DATAERR: State.BATCH_CONVERT_REJECTED,
    ExitCode.NOINPUT: State.NAME_BATCH_FAILURE,
    ExitCode.SOFTWARE: State.BATCH_FAILED,
    ExitCode.CANTCREAT: State.NAME_BATCH_FAILURE,
    ExitCode.TEMPFAIL: State.BATCH_FAILED,
}

# What the workflow retries itself (tests/unit/test_redrive.py checks this against every Retry
# of workflows/pipeline.asl.json), plus a task timing out: once those retries are exhausted, a
# later attempt may succeed.
RETRIED_ERRORS: Final[frozenset[str]] = frozenset(
    {
        *(cls.__name__ for cls in TransientError.__subclasses__()),
        "Lambda.AWSLambdaException",
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.SdkClientException",
        "Lambda.ServiceException",
        "Lambda.TooManyRequestsException",
        "Sandbox.Timedout",
        "Runtime.ExitError",
        "Runtime.OutOfMemory",
        "Lambda.Unknown",
        "Batch.AWSBatchException",
        "Batch.ServerException",
        "Batch.TooManyRequestsException",
        "States.TaskFailed",
    }
)
TRANSIENT_ERRORS: Final[frozenset[str]] = RETRIED_ERRORS | {"States.Timeout"}


class Outcome(StrEnum):
    """An execution's outcome from the operator's point of view (what ``chute status`` shows)."""

    SUCCEEDED = "SUCCEEDED"
    RUNNING = "RUNNING"
    QUARANTINED = "QUARANTINED"  # permanent error: the file is in quarantine with a report
    STALE = "STALE"  # the event no longer matched staging; nothing was moved
    REPLACED = "REPLACED"  # a later upload of another key owns the outputs; this file archived
    FAILED = "FAILED"  # transient/unexpected: the file is still in staging, rerun it


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    transient: bool = False
    """FAILED (or timed out) in a way another attempt may fix: the errors the workflow retries
    (exhausted), a timeout, Batch refusing the job, or a job that exited TEMPFAIL or was ended
    by the infrastructure. The scheduled auto-redrive redrives exactly these."""


def classify(
    status: str,
    *,
    fail_state: str | None = None,
    error: str | None = None,
    cause: str | None = None,
) -> Verdict:
    """The outcome of an execution with Step Functions status ``status`` (SUCCEEDED, RUNNING,
    FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE) that ended in ``fail_state`` (None: not in a
    Fail state, e.g. a task's error after its retries, a timeout, a stop) with ``error`` and
    ``cause`` (DescribeExecution's)."""
    if status == "SUCCEEDED":
        return Verdict(Outcome.SUCCEEDED)
    if status == "RUNNING":
        return Verdict(Outcome.RUNNING)
    if fail_state == State.REJECTED:
        return Verdict(Outcome.QUARANTINED)
    if fail_state == State.STALE:
        return Verdict(Outcome.STALE)
    if fail_state == State.REPLACED:
        return Verdict(Outcome.REPLACED)
    return Verdict(Outcome.FAILED, transient=_transient(status, fail_state, error, cause))


def _transient(status: str, fail_state: str | None, error: str | None, cause: str | None) -> bool:
    if status == "TIMED_OUT":
        return True
    if status != "FAILED":
        return False  # ABORTED: a person stopped it
    if fail_state == State.BATCH_SUBMIT_FAILED:
        return True  # Batch refused or failed the call itself: never the file's fault
    if fail_state == State.BATCH_FAILED:
        code = batch_exit_code(cause)
        # no exit code: the infrastructure ended the job (host terminated, attempt timeout)
        return code is None or (code in _CODES and ExitCode(code).retried_by_batch)
    return fail_state is None and error in TRANSIENT_ERRORS


_CODES: Final = frozenset(int(code) for code in ExitCode)


def batch_exit_code(cause: str | None) -> int | None:
    """The container's exit code in a failed Batch task's cause (the job's description)."""
    try:
        job = json.loads(cause or "")
    except ValueError:
        return None
    container = job.get("Container") if isinstance(job, dict) else None
    code = container.get("ExitCode") if isinstance(container, dict) else None
    return code if isinstance(code, int) else None


def fail_state_of(entered: Iterable[str]) -> State | None:
    """The Fail state among the states an execution entered (in order), the last if several."""
    found = None
    for name in entered:
        if name in FAIL_STATES:
            found = State(name)
    return found


def route_of(entered: Iterable[str]) -> str | None:
    """The conversion route an execution took; None if it has not reached a conversion."""
    seen = set(entered)
    for state in (State.CONVERT_PARTS, State.CONVERT_IN_BATCH, State.CONVERT_IN_LAMBDA):
        if state in seen:
            return ROUTES[state]
    return None
