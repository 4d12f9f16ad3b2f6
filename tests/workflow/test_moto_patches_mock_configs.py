"""Step Functions Local's MockConfigFile (chute/local/moto_patches/mock_configs.py).

How these tests go: tests/support/moto_patches.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from chute.local import moto_patches
from chute.local.embedded import EmbeddedAws
from tests.support.moto_patches import finish, machine, without

# --- sfn-mock-config, sfn-mock-config-worker, sfn-mock-states-error ---------------------------
PROBE_LAMBDA = {
    "StartAt": "Call",
    "States": {
        "Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "probe-no-such-function", "Payload": {}},
            "ResultSelector": {"answer.$": "$.Payload.answer"},
            "End": True,
        }
    },
}
PROBE_MOCKS = {
    "StateMachines": {
        "probe-mocked": {
            "TestCases": {
                "Answers": {"Call": "Answer42"},
                "JobFails": {"Call": "TaskFailed"},
            }
        }
    },
    "MockedResponses": {
        "Answer42": {"0": {"Return": {"StatusCode": 200, "Payload": {"answer": 42}}}},
        "TaskFailed": {"0": {"Throw": {"Error": "States.TaskFailed", "Cause": "{}"}}},
    },
}


@pytest.fixture
def probe_mocks(tmp_path: Path) -> Iterator[str]:
    """A state machine calling a function that doesn't exist, and a MockConfigFile for it."""
    path = tmp_path / "MockConfigFile.json"
    path.write_text(json.dumps(PROBE_MOCKS))
    kept = moto_patches.HOOKS.mock_config_file
    moto_patches.HOOKS.mock_config_file = path
    yield "probe-mocked"
    moto_patches.HOOKS.mock_config_file = kept


def _mocked_machine(embedded: EmbeddedAws, name: str) -> str:
    sfn = embedded.client("stepfunctions")
    for listed in sfn.list_state_machines()["stateMachines"]:
        if listed["name"] == name:
            return str(listed["stateMachineArn"])
    return machine(embedded, name, PROBE_LAMBDA)


def test_a_mock_test_case_runs_with_its_mocked_answer(
    embedded: EmbeddedAws, probe_mocks: str
) -> None:
    arn = _mocked_machine(embedded, probe_mocks)
    desc = finish(embedded, arn + "#Answers")
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    assert json.loads(desc["output"]) == {"answer": 42}
    assert desc["executionArn"].startswith(arn.replace(":stateMachine:", ":execution:"))


def test_an_unknown_mock_test_case_is_a_clear_error(
    embedded: EmbeddedAws, probe_mocks: str
) -> None:
    arn = _mocked_machine(embedded, probe_mocks)
    with pytest.raises(ClientError) as raised:
        embedded.client("stepfunctions").start_execution(stateMachineArn=arn + "#Nope")
    assert raised.value.response["Error"]["Code"] == "InvalidName"
    assert "'Nope'" in raised.value.response["Error"]["Message"]


@pytest.mark.canary
def test_canary_start_execution_still_refuses_a_test_case_arn(
    embedded: EmbeddedAws, probe_mocks: str
) -> None:
    arn = _mocked_machine(embedded, probe_mocks)
    with without("sfn-mock-config"), pytest.raises(ClientError):
        embedded.client("stepfunctions").start_execution(stateMachineArn=arn + "#Answers")


@pytest.mark.canary
def test_canary_the_worker_still_ignores_the_mock_test_case(
    embedded: EmbeddedAws, probe_mocks: str
) -> None:
    arn = _mocked_machine(embedded, probe_mocks)
    with without("sfn-mock-config-worker"):
        desc = finish(embedded, arn + "#Answers")
    assert desc["status"] == "FAILED"  # the real (missing) function was called


def test_a_mocked_states_error_keeps_its_name(embedded: EmbeddedAws, probe_mocks: str) -> None:
    desc = finish(embedded, _mocked_machine(embedded, probe_mocks) + "#JobFails")
    assert (desc["status"], desc["error"]) == ("FAILED", "States.TaskFailed")


@pytest.mark.canary
def test_canary_a_mocked_states_error_still_breaks(embedded: EmbeddedAws, probe_mocks: str) -> None:
    arn = _mocked_machine(embedded, probe_mocks)
    with without("sfn-mock-states-error"):
        desc = finish(embedded, arn + "#JobFails")
    assert desc["error"] == "States.Runtime"
