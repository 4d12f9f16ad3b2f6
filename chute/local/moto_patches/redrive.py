"""RedriveExecution on the embedded engine, missing in moto, with AWS's semantics
(docs/operating.md): a FAILED, TIMED_OUT or ABORTED execution resumes at the state it failed
in, same ARN, within 14 days of its end; DescribeExecution answers redriveCount, redriveDate,
redriveStatus and redriveStatusReason, ListExecutions redriveCount and redriveDate.

An execution of an earlier run of the runtime is a :class:`RestoredExecution` (the record
chute.local.persistence keeps, put in moto's place); a redrive revives it first.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.api import ExecutionStatus, HistoryEventType
from moto.stepfunctions.parser.asl.eval.evaluation_details import (
    EvaluationDetails,
    StateMachineDetails,
)
from moto.stepfunctions.parser.backend.execution import Execution as SfnExecution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from chute.local.moto_patches.seam import HOOKS, Fixes, Kind
from tasks.workflow_definition import Definition

FIXES = Fixes()

INTERRUPTED_ERROR = "chute.Interrupted"
"""The error of an execution that was RUNNING when the embedded runtime stopped: restored as
ABORTED with it (chute.local.persistence), its file announced again, it is not redriven."""


# --- the record of an execution of an earlier run ---------------------------------------------
class _NoCallbacks:
    @staticmethod
    def notify(callback_id: Any, outcome: Any) -> bool:
        return False


class RestoredExecution:
    """An ended execution answering the read APIs from its record: one of an earlier run of the
    runtime, or one of this run once it ended (chute.local.persistence keeps only the record,
    not the interpreter's state). Its history is read when asked for, from ``history`` when
    that is a loader. A redrive revives it from the record (``redrive`` below), unless it was
    interrupted by the stop (its file was announced again)."""

    def __init__(
        self,
        describe: dict[str, Any],
        history: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]],
    ) -> None:
        self.execution_arn = self.exec_arn = describe["executionArn"]
        self.name = describe["name"]
        self.state_machine_arn = describe["stateMachineArn"]
        self.execution_input = describe.get("input") or "{}"
        self.status = describe["status"]
        self.exec_status = self.status
        self.start_date = describe["startDate"]
        self.stop_date = describe.get("stopDate")
        self.output = describe.get("output")
        self.output_details = describe.get("outputDetails") or {"included": True}
        self.error = describe.get("error")
        self.cause = describe.get("cause")
        self._history = history
        self.chute_redrive_count = int(describe.get("redriveCount") or 0)
        self.chute_redrive_date = describe.get("redriveDate")
        self.exec_worker = SimpleNamespace(
            env=SimpleNamespace(callback_pool_manager=_NoCallbacks())
        )

    @property
    def history(self) -> list[dict[str, Any]]:
        return list(self._history() if callable(self._history) else self._history)

    def to_history_output(self) -> dict[str, Any]:
        return {"events": self.history}

    def stop(self, stop_date: Any, error: Any, cause: Any) -> None:
        """Already over: nothing to stop."""


# --- RedriveExecution -------------------------------------------------------------------------
REDRIVE_WINDOW = dt.timedelta(days=14)
"""How long after its end an execution can be redriven (AWS: 14 days)."""
_REDRIVABLE = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


class ExecutionNotRedrivable(AWSError):
    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


def redrive_count(execution: Any) -> int:
    return int(getattr(execution, "chute_redrive_count", 0))


def not_redrivable_reason(execution: Any, now: dt.datetime | None = None) -> str | None:
    """Why RedriveExecution would refuse ``execution`` (AWS's redriveStatusReason), or None."""
    status = str(getattr(execution.status, "value", execution.status))
    if status == "RUNNING":
        return "Execution is RUNNING and cannot be redriven."
    if status == "SUCCEEDED":
        return "Execution is SUCCEEDED and cannot be redriven."
    if status not in _REDRIVABLE:
        return f"Execution is {status} and cannot be redriven."
    if isinstance(execution, RestoredExecution):
        # chute.local.persistence's record of an earlier run of the embedded runtime (local only)
        if execution.error == INTERRUPTED_ERROR:
            return (
                "Execution was interrupted by a stop of the embedded runtime;"
                " its file was announced again."
            )
    elif not isinstance(execution, SfnExecution) or execution.exec_worker is None:
        return "Execution has not started."
    elif "EXPRESS" in str(execution.sm_type):
        return "Execution of an EXPRESS state machine cannot be redriven."
    stopped = execution.stop_date
    if stopped is not None and (now or dt.datetime.now(dt.UTC)) - stopped > REDRIVE_WINDOW:
        return "Execution redrivable period exceeded."
    return None


def _resume_point(
    events: list[Any], definition: dict[str, Any], execution_input: Any
) -> tuple[str, Any]:
    """The state the execution failed in (entered last and never exited) and its input."""
    top = set(Definition(definition).states)
    failed: tuple[str, Any] | None = None
    for event in events:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            details = event.get("stateEnteredEventDetails") or {}
            if details.get("name") in top:
                failed = (details["name"], json.loads(details.get("input") or "{}"))
        elif (
            kind.endswith("StateExited")
            and failed is not None
            and (event.get("stateExitedEventDetails") or {}).get("name") == failed[0]
        ):
            failed = None
    return failed or (str(definition["StartAt"]), execution_input)


class _RedriveWorker(ExecutionWorker):
    """Runs an execution again from the state it failed in, after its kept history."""

    def __init__(
        self, *args: Any, history: list[Any], redrives: int, state_input: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._history = history
        self._redrives = redrives
        self._state_input = state_input

    def _execution_logic(self) -> None:
        program = self._get_evaluation_entrypoint()
        env = self.env = self._get_evaluation_environment()
        manager = env.event_manager
        last_id = max((int(e["id"]) for e in self._history), default=0)
        manager._history_event_list.extend(self._history)
        manager._event_id_gen._next_id = last_id + 1
        env.event_history_context.source_event_id = last_id
        env.event_history_context.last_published_event_id = last_id
        execution_data: dict[str, Any] = env.states.context_object.context_object_data["Execution"]  # type: ignore[assignment]
        execution_data["RedriveCount"] = self._redrives
        env.states.reset(self._state_input)
        details: Any = {"executionRedrivenEventDetails": {"redriveCount": self._redrives}}
        manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            event_details=details,
        )
        program.eval(env)
        self._execution_communication.terminated()


def _revive(backend: StepFunctionsParserBackend, restored: RestoredExecution) -> Any:
    """A live execution in place of the record of an earlier run (chute.local.persistence), with the
    state machine's current definition (the record has none: the same unless the workflow file
    changed between the runs)."""
    machine: Any = backend.describe_state_machine(restored.state_machine_arn)
    clone = copy.deepcopy(
        machine, {id(machine.executions): [], id(machine.backend): machine.backend}
    )
    live: Any = SfnExecution(
        name=restored.name,
        sm_type=clone.sm_type,
        role_arn=clone.roleArn,
        exec_arn=restored.execution_arn,
        account_id=backend.account_id,
        region_name=backend.region_name,
        state_machine=clone,
        start_date=restored.start_date,
        cloud_watch_logging_session=None,
        activity_store={},
        input_data=restored.execution_input,
    )
    live.exec_status = ExecutionStatus(restored.status)
    live.stop_date, live.error, live.cause = restored.stop_date, restored.error, restored.cause
    live.chute_redrive_count = redrive_count(restored)
    machine.executions[machine.executions.index(restored)] = live
    return live


def redrive(backend: StepFunctionsParserBackend, execution_arn: str) -> Any:
    """RedriveExecution with AWS's semantics: the same execution (ARN, input, start date,
    definition) continues at the state it failed in, with that state's input; the states
    before it are not run again; its history grows by ExecutionRedriven and what follows.
    Map and Parallel states are run again whole (AWS redrives only their failed iterations).
    An execution recorded by an earlier run of the runtime (chute.local.persistence) is revived from
    its record first."""
    execution: Any = backend.describe_execution(execution_arn)
    reason = not_redrivable_reason(execution)
    if reason is not None:
        raise ExecutionNotRedrivable(f"Execution {execution_arn} cannot be redriven: {reason}")
    if isinstance(execution, RestoredExecution):
        history, mock_test_case = list(execution.history), None
        execution = _revive(backend, execution)
    else:
        env = execution.exec_worker.env
        history = env.event_manager.get_event_history() if env is not None else []
        mock_test_case = execution.exec_worker._mock_test_case
    definition = json.loads(execution.state_machine.definition)
    state, state_input = _resume_point(list(history), definition, execution.input_data)
    redrives = redrive_count(execution) + 1
    details = execution.get_start_state_machine_details()
    worker = _RedriveWorker(
        evaluation_details=EvaluationDetails(
            aws_execution_details=execution._get_start_aws_execution_details(),
            execution_details=execution.get_start_execution_details(),
            state_machine_details=StateMachineDetails(
                arn=details.arn,
                name=details.name,
                typ=details.typ,
                definition=json.dumps({**definition, "StartAt": state}),
            ),
        ),
        exec_comm=execution._get_start_execution_worker_comm(),
        cloud_watch_logging_session=execution._cloud_watch_logging_session,
        activity_store=execution._activity_store,
        mock_test_case=mock_test_case,
        history=list(history),
        redrives=redrives,
        state_input=state_input,
    )
    execution.chute_redrive_count = redrives
    execution.chute_redrive_date = dt.datetime.now(dt.UTC)
    execution.exec_status = ExecutionStatus.RUNNING
    execution.stop_date = None
    execution.error = execution.cause = None
    execution.output = None
    execution.exec_worker = worker
    if HOOKS.execution_started is not None:
        HOOKS.execution_started(execution)
    worker.start()  # type: ignore[no-untyped-call]
    return execution


@FIXES.declare(
    "sfn-redrive-execution",
    Kind.REDRIVE,
    StepFunctionResponse,
    "redrive_execution",
    why="moto has no RedriveExecution",
)
def _redrive_execution(original: Any) -> Any:
    def redrive_execution(self: StepFunctionResponse) -> ActionResult:
        execution = redrive(
            self.stepfunction_backend,  # type: ignore[arg-type]
            self._get_param("executionArn"),
        )
        return ActionResult({"redriveDate": execution.chute_redrive_date})

    return redrive_execution


def _redrive_fields(execution: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"redriveCount": redrive_count(execution)}
    if getattr(execution, "chute_redrive_date", None) is not None:
        fields["redriveDate"] = execution.chute_redrive_date
    reason = not_redrivable_reason(execution)
    fields["redriveStatus"] = "NOT_REDRIVABLE" if reason else "REDRIVABLE"
    if reason:
        fields["redriveStatusReason"] = reason
    return fields


@FIXES.declare(
    "sfn-redrive-describe",
    Kind.REDRIVE,
    StepFunctionResponse,
    "describe_execution",
    why="DescribeExecution lacks redriveCount/redriveStatus",
)
def _redrive_describe(original: Any) -> Any:
    def describe_execution(self: StepFunctionResponse) -> Any:
        result = original(self)
        if isinstance(result, ActionResult) and isinstance(result.result, dict):
            execution = self.stepfunction_backend.describe_execution(
                self._get_param("executionArn")
            )
            result.result.update(_redrive_fields(execution))
        return result

    return describe_execution


@FIXES.declare(
    "sfn-redrive-list",
    Kind.REDRIVE,
    StepFunctionResponse,
    "list_executions",
    why="ListExecutions lacks redriveCount",
)
def _redrive_list(original: Any) -> Any:
    def list_executions(self: StepFunctionResponse) -> Any:
        result = original(self)
        if isinstance(result, ActionResult) and isinstance(result.result, dict):
            machine: Any = self.stepfunction_backend.describe_state_machine(
                self._get_param("stateMachineArn")
            )
            by_arn: dict[str, Any] = {e.execution_arn: e for e in machine.executions}
            for item in result.result.get("executions", []):
                execution = by_arn.get(item["executionArn"])
                redriven = getattr(execution, "chute_redrive_date", None)
                item["redriveCount"] = redrive_count(execution)
                if redriven is not None:
                    item["redriveDate"] = redriven
        return result

    return list_executions
