"""RedriveExecution on the embedded engine (chute/local/moto_patches/redrive.py).

How these tests go: tests/support/moto_patches.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chute.local.embedded import EmbeddedAws
from chute.local.moto_patches import redrive
from tests.support.moto_patches import finish, machine, without
from tests.support.pipeline import wait_until

# --- sfn-redrive-execution, sfn-redrive-describe, sfn-redrive-list ----------------------------
FLAKY = {
    "StartAt": "First",
    "States": {
        "First": {"Type": "Pass", "Result": "done", "ResultPath": "$.first", "Next": "Flaky"},
        "Flaky": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Broken"}],
            "Default": "Fine",
        },
        "Broken": {"Type": "Fail", "Error": "Broken", "Cause": "it was broken"},
        "Fine": {"Type": "Succeed"},
    },
}


def _backend_execution(embedded: EmbeddedAws, arn: str) -> Any:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    r = embedded.resources
    return stepfunctions_parser_backends[r.account][r.region].describe_execution(arn)


def test_a_failed_execution_is_redriven_in_place(embedded: EmbeddedAws) -> None:
    sfn = embedded.client("stepfunctions")
    failed = finish(embedded, machine(embedded, "probe-redrive", FLAKY), input='{"fail": true}')
    arn = failed["executionArn"]
    assert (failed["redriveCount"], failed["redriveStatus"]) == (0, "REDRIVABLE")
    sfn.redrive_execution(executionArn=arn)
    desc = wait_until(
        lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
        what="redrive finished",
    )
    # same execution, resumed at the state it failed in: it fails there again
    assert (desc["status"], desc["error"], desc["redriveCount"]) == ("FAILED", "Broken", 1)
    assert "redriveDate" in desc
    events = sfn.get_execution_history(executionArn=arn)["events"]
    types = [e["type"] for e in events]
    assert types.count("ExecutionStarted") == 1 and types.count("ExecutionRedriven") == 1
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    after = types.index("ExecutionRedriven")
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in events[after:]
        if "stateEnteredEventDetails" in e
    ]
    assert entered == ["Broken"]
    listed = sfn.list_executions(stateMachineArn=desc["stateMachineArn"])["executions"]
    assert next(e for e in listed if e["executionArn"] == arn)["redriveCount"] == 1


def test_a_succeeded_or_old_execution_is_not_redriven(embedded: EmbeddedAws) -> None:
    sfn = embedded.client("stepfunctions")
    arn = machine(embedded, "probe-redrive-refused", FLAKY)
    succeeded = finish(embedded, arn, input='{"fail": false}')
    with pytest.raises(ClientError) as raised:
        sfn.redrive_execution(executionArn=succeeded["executionArn"])
    assert raised.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    assert succeeded["redriveStatus"] == "NOT_REDRIVABLE"
    old = finish(embedded, arn, input='{"fail": true}')
    backend = _backend_execution(embedded, old["executionArn"])
    backend.stop_date -= redrive.REDRIVE_WINDOW + timedelta(minutes=1)
    with pytest.raises(ClientError) as raised:
        sfn.redrive_execution(executionArn=old["executionArn"])
    assert raised.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
    desc = sfn.describe_execution(executionArn=old["executionArn"])
    assert desc["redriveStatusReason"] == "Execution redrivable period exceeded."


@pytest.mark.canary
def test_canary_redrive_execution_is_still_missing(embedded: EmbeddedAws) -> None:
    failed = finish(
        embedded, machine(embedded, "probe-redrive-canary", FLAKY), input='{"fail": true}'
    )
    with without("sfn-redrive-execution"), pytest.raises(ClientError):
        embedded.client("stepfunctions").redrive_execution(executionArn=failed["executionArn"])


@pytest.mark.canary
def test_canary_describe_and_list_still_lack_redrive_fields(embedded: EmbeddedAws) -> None:
    sfn = embedded.client("stepfunctions")
    arn = machine(embedded, "probe-redrive-fields-canary", FLAKY)
    failed = finish(embedded, arn, input='{"fail": true}')
    with without("sfn-redrive-describe"), without("sfn-redrive-list"):
        desc = sfn.describe_execution(executionArn=failed["executionArn"])
        (item,) = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert "redriveStatus" not in desc and "redriveCount" not in desc
    assert "redriveCount" not in item


def test_an_execution_of_an_earlier_run_is_redriven_from_its_record(
    embedded: EmbeddedAws,
) -> None:
    # GIVEN a failed execution as a restart restores it (its record, no interpreter state)
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    from chute.local.moto_patches.redrive import INTERRUPTED_ERROR, RestoredExecution
    from chute.local.persistence import describe_of

    sfn = embedded.client("stepfunctions")
    arn = machine(embedded, "probe-redrive-restored", FLAKY)
    r = embedded.resources
    state_machine = stepfunctions_parser_backends[r.account][r.region].describe_state_machine(arn)

    def restored(input_: str, error: str | None = None) -> str:
        live = _backend_execution(embedded, finish(embedded, arn, input=input_)["executionArn"])
        describe = describe_of(live)
        describe["error"] = error or describe["error"]
        history = live.to_history_output()["events"]
        state_machine.executions[state_machine.executions.index(live)] = RestoredExecution(
            describe, history
        )
        return str(live.execution_arn)

    failed, interrupted = restored('{"fail": true}'), restored('{"fail": true}', INTERRUPTED_ERROR)
    # WHEN it is redriven
    sfn.redrive_execution(executionArn=failed)
    desc = wait_until(
        lambda: (d := sfn.describe_execution(executionArn=failed))["status"] != "RUNNING" and d,
        what="redrive finished",
    )
    # THEN the same execution resumed at its failed state, its history kept
    assert (desc["status"], desc["error"], desc["redriveCount"]) == ("FAILED", "Broken", 1)
    events = sfn.get_execution_history(executionArn=failed)["events"]
    assert [e["type"] for e in events].count("ExecutionRedriven") == 1
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    # AND one interrupted by the stop (its file announced again) is not redriven
    with pytest.raises(ClientError) as raised:
        sfn.redrive_execution(executionArn=interrupted)
    assert "interrupted by a stop" in raised.value.response["Error"]["Message"]
