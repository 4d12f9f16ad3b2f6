"""The scheduled auto-redrive in the stack: a rate schedule, the redrive function with its
settings, RedriveExecution granted on the execution ARNs, and a way to turn it off."""

from __future__ import annotations

from typing import Any

import pytest

from tasks import names
from tests.support.synth import DEFAULT_CONTEXT, Synth, dumps


def _role_statements(synth: Synth, fragment: str) -> list[dict[str, Any]]:
    return [
        statement
        for logical_id, policy in synth.resources("AWS::IAM::Policy").items()
        if fragment in logical_id
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_a_schedule_runs_the_redrive_function(synth: Synth) -> None:
    redrive = synth.stack.redrive
    assert redrive is not None
    (rule,) = [
        r
        for r in synth.resources("AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]
    props = rule["Properties"]
    assert props["ScheduleExpression"] == f"rate({names.DEFAULT_REDRIVE_EVERY_MINUTES} minutes)"
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [synth.logical_id(redrive.function), "Arn"]}
    function = synth.json["Resources"][synth.logical_id(redrive.function)]["Properties"]
    assert function["ImageConfig"]["Command"] == [names.HANDLERS["redrive"]]
    variables = function["Environment"]["Variables"]
    assert set(variables) == set(names.FUNCTION_SETTINGS["redrive"])
    assert variables[names.ENV_MAX_REDRIVES] == str(names.DEFAULT_MAX_REDRIVES)
    assert variables[names.ENV_STATE_MACHINE_ARN] == synth.ref(synth.stack.workflow.state_machine)


def test_redrive_is_granted_on_executions_and_listing_on_the_state_machine(synth: Synth) -> None:
    statements = {
        tuple(sorted(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])): s
        for s in _role_statements(synth, "AutoRedrive")
        if "states:" in dumps(s["Action"])
    }
    assert set(statements) == {
        ("states:ListExecutions", "states:StartExecution"),
        ("states:DescribeExecution", "states:GetExecutionHistory", "states:RedriveExecution"),
    }
    machine = synth.stack.workflow.state_machine
    listing = statements[("states:ListExecutions", "states:StartExecution")]
    assert listing["Resource"] == synth.ref(machine)
    redrive = statements[
        ("states:DescribeExecution", "states:GetExecutionHistory", "states:RedriveExecution")
    ]
    resource = dumps(redrive["Resource"])
    # an execution ARN pattern of this state machine (the common mistake: the machine's ARN)
    assert ":execution:" in resource and ":stateMachine:" not in resource
    assert synth.logical_id(machine) in resource
    # StartExecution only on the state machine (the restart of an execution that ended in a
    # Fail state), never on executions
    assert "states:StartExecution" not in dumps(redrive["Action"])


@pytest.fixture(scope="module")
def without_redrive(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    context = {**DEFAULT_CONTEXT, "chute:auto_redrive_max": "0"}
    return Synth(tmp_path_factory.mktemp("no-redrive"), context=context)


def test_it_can_be_turned_off(without_redrive: Synth) -> None:
    assert without_redrive.stack.redrive is None
    rules = without_redrive.resources("AWS::Events::Rule").values()
    assert [r for r in rules if "ScheduleExpression" in r["Properties"]] == []
    assert "redrive" not in without_redrive.stack.functions
    alarms = [
        a["Properties"]["AlarmName"]
        for a in without_redrive.resources("AWS::CloudWatch::Alarm").values()
    ]
    assert not [a for a in alarms if a.endswith("RedrivesExhausted")]
