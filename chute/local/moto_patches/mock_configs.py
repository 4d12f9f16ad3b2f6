"""Step Functions Local's MockConfigFile (docs/testing-workflows.md) on moto's interpreter, which
has the mock machinery but never loads a file, and whose StartExecution refuses
``<stateMachineArn>#<TestCase>``: now the file in HOOKS.mock_config_file
(LocalSettings.mock_config, SFN_MOCK_CONFIG) is read at every such StartExecution, the
execution hands its test case to its worker, and a mocked Throw of a States.* error (a .sync
job's States.TaskFailed, States.Timeout) keeps its name instead of ending in States.Runtime.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from moto.stepfunctions.exceptions import InvalidName
from moto.stepfunctions.parser.asl.component.state.exec.state_task import mock_eval_utils
from moto.stepfunctions.parser.backend.execution import Execution as SfnExecution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.mocking.mock_config import (
    MockedResponse,
    MockedResponseReturn,
    MockedResponseThrow,
    MockTestCase,
    StateMockedResponses,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from chute.local.moto_patches.seam import HOOKS, Fixes, Kind
from chute.local.moto_patches.stepfunctions import states_error_name
from chute.ops.mock_cases import MockConfigError, load_mock_config

FIXES = Fixes()

_PENDING_MOCK = threading.local()


def _mock_test_case(machine: str, case: str) -> MockTestCase:
    """The test case ``case`` of ``machine`` from HOOKS.mock_config_file, in moto's classes.
    Read at every start, so an edited file applies to the next execution."""
    path = HOOKS.mock_config_file
    if path is None:
        raise InvalidName(
            f"Invalid mock test case name '{case}' for state machine '{machine}': no mock"
            " configuration is loaded (start the runtime with a MockConfigFile:"
            " LocalSettings.mock_config, `chute up --mock-config` or SFN_MOCK_CONFIG)"
        )
    try:
        config = load_mock_config(path)
    except MockConfigError as exc:
        raise InvalidName(str(exc)) from exc
    states = config.test_cases.get(machine, {}).get(case)
    if states is None:
        raise InvalidName(
            f"Invalid mock test case name '{case}' for state machine '{machine}': not in {path}"
        )
    mocked = []
    for state, name in states.items():
        answers: list[MockedResponse] = []
        for first, last, answer in config.responses[name]:
            if answer.kind == "Return":
                answers.append(MockedResponseReturn(first, last, copy.deepcopy(answer.payload)))
            else:
                answers.append(MockedResponseThrow(first, last, answer.error, answer.cause))
        mocked.append(StateMockedResponses(state, name, answers))
    return MockTestCase(machine, case, mocked)


@FIXES.declare(
    "sfn-mock-config",
    Kind.MOCK_CONFIG,
    StepFunctionsParserBackend,
    "start_execution",
    why="StartExecution on <arn>#<TestCase> never loads a MockConfigFile",
)
def _sfn_mock_config(original: Any) -> Any:
    def start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        base, marked, case = state_machine_arn.partition("#")
        if not marked:
            return original(self, state_machine_arn, *args, **kwargs)
        machine = self.describe_state_machine(base)
        _PENDING_MOCK.case = _mock_test_case(machine.name, case)
        try:
            return original(self, base, *args, **kwargs)
        finally:
            _PENDING_MOCK.case = None

    return start_execution


FIXES.declare(
    "sfn-mock-states-error",
    Kind.MOCK_CONFIG,
    mock_eval_utils,
    "CustomErrorName",
    why="a mocked Throw of a States.* error (States.TaskFailed from a .sync job, "
    "States.Timeout) ends in States.Runtime",
)(states_error_name)


@FIXES.declare(
    "sfn-mock-config-worker",
    Kind.MOCK_CONFIG,
    SfnExecution,
    "_get_start_execution_worker",
    why="an execution never hands its mock test case to its worker",
)
def _sfn_mock_worker(original: Any) -> Any:
    def _get_start_execution_worker(self: SfnExecution) -> ExecutionWorker:
        worker: ExecutionWorker = original(self)
        case = getattr(_PENDING_MOCK, "case", None)
        if case is not None:
            worker._mock_test_case = case  # type: ignore[misc]
        return worker

    return _get_start_execution_worker
