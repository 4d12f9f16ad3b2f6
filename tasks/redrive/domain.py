"""Which failed executions to redrive, and doing it through a port.

Only failures another attempt can fix are redriven (``tasks.workflow.classify`` decides, as for
``chute status``): the errors the workflow itself retries (exhausted), a timeout, or a Batch job
that exited ``ExitCode.TEMPFAIL`` or was ended by the infrastructure. Never a quarantined file
(``Rejected``), a stale event (``Stale``), a Batch job that reported a bug or bad parameters, an
execution a person stopped, or one already rerun as a new execution by ``chute rerun``. Each
execution is redriven at most ``max_redrives`` times (Step Functions counts them:
``redriveCount``); when one fails again at the cap the run says so (a metric with an alarm on it).
An execution that ended in a Fail state (``BatchFailed``, ``BatchSubmitFailed``) is restarted
instead, once, as a new execution with the same input (``tasks.workflow.rerun_name``): a redrive
would resume at that Fail state and fail again, on AWS as on the embedded engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from tasks import log
from tasks.metrics import NOT_RECORDED, Sink
from tasks.models import FailedExecution
from tasks.settings import RedriveSettings
from tasks.workflow import RERUN_SUFFIX, classify, rerun_name

Decision = Literal[
    "redrive", "restart", "not_transient", "capped", "already_rerun", "not_redrivable"
]


class Executions(Protocol):
    def failed_since(self, since: datetime) -> Iterable[FailedExecution]: ...

    def rerun_exists(self, execution: FailedExecution) -> bool:
        """Whether ``chute rerun`` already restarted it as a new execution."""
        ...

    def redrive(self, execution: FailedExecution) -> bool:
        """RedriveExecution; False if Step Functions says it can't be redriven."""
        ...

    def restart(self, execution: FailedExecution) -> bool:
        """A new execution named ``rerun_name(name)`` with the same input; False if it exists."""
        ...


def is_transient(execution: FailedExecution) -> bool:
    """Whether another attempt may succeed (tasks.workflow.classify decides)."""
    return classify(
        execution.status,
        fail_state=execution.fail_state,
        error=execution.error,
        cause=execution.cause,
    ).transient


@dataclass
class RedriveReport:
    redriven: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    capped: list[str] = field(default_factory=list)
    skipped: dict[str, Decision] = field(default_factory=dict)


def redrive_failed(
    executions: Executions,
    settings: RedriveSettings,
    now: datetime,
    metrics: Sink = NOT_RECORDED,
) -> RedriveReport:
    """One scheduled run: look at executions that failed within the lookback window."""
    report = RedriveReport()
    since = now - timedelta(hours=settings.lookback_hours)
    recent = now - timedelta(minutes=2 * settings.every_minutes)
    for execution in executions.failed_since(since):
        decision = _decide(execution, executions, settings)
        if decision == "redrive" and not executions.redrive(execution):
            decision = "not_redrivable"
        if decision == "restart" and not executions.restart(execution):
            decision = "already_rerun"
        if decision == "restart":
            report.restarted.append(execution.name)
            metrics.execution_redriven()
            log.info(
                "execution restarted",
                execution=execution.name,
                error=execution.error,
                fail_state=execution.fail_state,
                new_execution=rerun_name(execution.name),
            )
        elif decision == "redrive":
            report.redriven.append(execution.name)
            metrics.execution_redriven()
            log.info(
                "execution redriven",
                execution=execution.name,
                error=execution.error,
                redrives=execution.redrive_count + 1,
                max_redrives=settings.max_redrives,
            )
        elif decision == "capped":
            report.capped.append(execution.name)
            if execution.stopped >= recent:  # counted once, when it failed at the cap
                metrics.redrives_exhausted()
                log.warning(
                    "redrives exhausted",
                    execution=execution.name,
                    error=execution.error,
                    redrives=execution.redrive_count,
                )
        else:
            report.skipped[execution.name] = decision
    return report


def _decide(
    execution: FailedExecution, executions: Executions, settings: RedriveSettings
) -> Decision:
    if not is_transient(execution):
        return "not_transient"
    if execution.fail_state is not None:
        # A redrive resumes at the Fail state and fails again there: restart it instead, once
        # (a restart that ends in a Fail state again is left to a person).
        if execution.name.endswith(RERUN_SUFFIX):
            return "capped"
        return "already_rerun" if executions.rerun_exists(execution) else "restart"
    if execution.redrive_count >= settings.max_redrives:
        return "capped"
    if executions.rerun_exists(execution):
        return "already_rerun"
    return "redrive"
