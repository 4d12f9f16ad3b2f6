"""The AWS-only paths of the operations commands, with botocore's Stubber asserting the exact
requests: stack-output lookup, RedriveExecution, the fallback to a new execution, console links."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chute.ops import operate
from chute.ops.deployment import Deployment, DeploymentError, connect
from tasks.workflow import RERUN_SUFFIX

REGION = "eu-west-1"
MACHINE = f"arn:aws:states:{REGION}:111122223333:stateMachine:Chute-Pipeline"
EXECUTION = f"arn:aws:states:{REGION}:111122223333:execution:Chute-Pipeline:orders-csv-abc"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
INPUT = json.dumps({"source": {"bucket": "staging", "key": "in/orders.csv", "size": 10}})


def client(service: str) -> Any:
    return boto3.client(
        service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


def aws_deployment(sfn: Any) -> Deployment:
    return Deployment(
        sfn=sfn,
        s3=client("s3"),
        state_machine_arn=MACHINE,
        staging_bucket="staging",
        quarantine_bucket="quarantine",
        output_bucket="output",
        region=REGION,
        on_aws=True,
    )


def describe(status: str = "FAILED", error: str = "StorageUnavailable") -> dict[str, Any]:
    return {
        "executionArn": EXECUTION,
        "stateMachineArn": MACHINE,
        "name": "orders-csv-abc",
        "status": status,
        "startDate": NOW,
        "stopDate": NOW,
        "input": INPUT,
        "error": error,
        "cause": "boom",
    }


def history(*states: str) -> dict[str, Any]:
    events = [
        {
            "timestamp": NOW,
            "type": "TaskStateEntered",
            "id": i + 1,
            "stateEnteredEventDetails": {"name": name},
        }
        for i, name in enumerate(states)
    ]
    return {"events": events}


class FakeSession:
    def __init__(self, clients: dict[str, Any]) -> None:
        self._clients = clients
        self.region_name = REGION

    def client(self, name: str, **_: Any) -> Any:
        return self._clients[name]


def test_stack_outputs_locate_the_resources() -> None:
    cfn = client("cloudformation")
    outputs = {
        "StateMachineArn": MACHINE,
        "StagingBucket": "staging-b",
        "QuarantineBucket": "quarantine-b",
        "OutputBucket": "output-b",
    }
    with Stubber(cfn) as stub:
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "Chute",
                        "CreationTime": NOW,
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                    }
                ]
            },
            {"StackName": "Chute"},
        )
        session = FakeSession(
            {"cloudformation": cfn, "stepfunctions": client("stepfunctions"), "s3": client("s3")}
        )
        d = connect(session=session)
    assert (d.state_machine_arn, d.staging_bucket, d.quarantine_bucket) == (
        MACHINE,
        "staging-b",
        "quarantine-b",
    )
    assert d.on_aws
    assert d.console_url(EXECUTION) == (
        f"https://{REGION}.console.aws.amazon.com/states/home?region={REGION}"
        f"#/v2/executions/details/{EXECUTION}"
    )


def test_a_stack_without_chute_outputs_is_a_clear_error() -> None:
    cfn = client("cloudformation")
    with Stubber(cfn) as stub:
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {"StackName": "Other", "CreationTime": NOW, "StackStatus": "CREATE_COMPLETE"}
                ]
            },
            {"StackName": "Other"},
        )
        with pytest.raises(DeploymentError, match="is it chute"):
            connect(stack="Other", session=FakeSession({"cloudformation": cfn}))


def test_rerun_on_aws_redrives_the_execution_itself() -> None:
    sfn = client("stepfunctions")
    with Stubber(sfn) as stub:
        stub.add_response("describe_execution", describe(), {"executionArn": EXECUTION})
        stub.add_response("get_execution_history", history("Validate", "ConvertInLambda"))
        stub.add_client_error(
            "describe_execution",
            service_error_code="ExecutionDoesNotExist",
            expected_params={"executionArn": EXECUTION + RERUN_SUFFIX},
        )
        stub.add_response("redrive_execution", {"redriveDate": NOW}, {"executionArn": EXECUTION})
        (result,) = operate.rerun(aws_deployment(sfn), [EXECUTION])
        stub.assert_no_pending_responses()
    assert (result.action, result.new_execution) == ("redriven", "orders-csv-abc")


def test_rerun_starts_a_new_execution_with_the_input_when_redrive_is_impossible() -> None:
    sfn = client("stepfunctions")
    with Stubber(sfn) as stub:
        stub.add_response("describe_execution", describe(), {"executionArn": EXECUTION})
        stub.add_response("get_execution_history", history("Validate"))
        stub.add_client_error(
            "describe_execution",
            service_error_code="ExecutionDoesNotExist",
            expected_params={"executionArn": EXECUTION + RERUN_SUFFIX},
        )
        stub.add_client_error(
            "redrive_execution",
            service_error_code="ExecutionNotRedrivable",
            service_message="older than 14 days",
            expected_params={"executionArn": EXECUTION},
        )
        stub.add_response("describe_execution", describe(), {"executionArn": EXECUTION})
        stub.add_response(
            "start_execution",
            {"executionArn": EXECUTION + RERUN_SUFFIX, "startDate": NOW},
            {
                "stateMachineArn": MACHINE,
                "name": "orders-csv-abc" + RERUN_SUFFIX,
                "input": INPUT,
            },
        )
        (result,) = operate.rerun(aws_deployment(sfn), [EXECUTION])
        stub.assert_no_pending_responses()
    assert result.action == "restarted"
    assert "ExecutionNotRedrivable" in result.reason and "older than 14 days" in result.reason


def test_rerun_restarts_an_execution_that_ended_in_a_fail_state() -> None:
    # GIVEN a Batch job that exited 75 (transient): the execution ended in the Fail state
    # BatchFailed, which a redrive would enter again
    sfn = client("stepfunctions")
    cause = json.dumps({"Container": {"ExitCode": 75}})
    path = ("Validate", "ConvertInBatch", "CheckBatchCause", "InspectBatchFailure")
    with Stubber(sfn) as stub:
        failed = describe(error="States.TaskFailed") | {"cause": cause}
        stub.add_response("describe_execution", failed, {"executionArn": EXECUTION})
        stub.add_response("get_execution_history", history(*path, "BatchFailed"))
        stub.add_client_error(
            "describe_execution",
            service_error_code="ExecutionDoesNotExist",
            expected_params={"executionArn": EXECUTION + RERUN_SUFFIX},
        )
        stub.add_response("describe_execution", failed, {"executionArn": EXECUTION})
        stub.add_response(
            "start_execution",
            {"executionArn": EXECUTION + RERUN_SUFFIX, "startDate": NOW},
            {"stateMachineArn": MACHINE, "name": "orders-csv-abc" + RERUN_SUFFIX, "input": INPUT},
        )
        # WHEN it is rerun
        (result,) = operate.rerun(aws_deployment(sfn), [EXECUTION])
        # THEN no redrive was asked for: a new execution redoes the conversion
        stub.assert_no_pending_responses()
    assert result.action == "restarted"
    assert "ended in the Fail state BatchFailed" in result.reason


def test_rerun_refuses_a_quarantined_file_without_force() -> None:
    sfn = client("stepfunctions")
    with Stubber(sfn) as stub:
        stub.add_response(
            "describe_execution", describe(error="MalformedContent"), {"executionArn": EXECUTION}
        )
        stub.add_response("get_execution_history", history("Validate", "Quarantine", "Rejected"))
        (result,) = operate.rerun(aws_deployment(sfn), [EXECUTION])
    assert result.action == "refused"
    assert "chute requeue in/orders.csv" in result.reason


def test_bulk_reruns_are_rate_limited() -> None:
    sfn = client("stepfunctions")
    waits: list[float] = []
    with Stubber(sfn) as stub:
        for _ in range(3):
            stub.add_response("describe_execution", describe(status="SUCCEEDED"))
            stub.add_response("get_execution_history", history("Validate"))
        results = operate.rerun(
            aws_deployment(sfn), [EXECUTION] * 3, per_second=4, sleep=waits.append
        )
    assert [r.action for r in results] == ["skipped"] * 3
    assert waits == [0.25, 0.25]


def test_since_parses_units_and_rejects_nonsense() -> None:
    assert operate.parse_since("2h", now=NOW) == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert operate.parse_since("30m", now=NOW) == datetime(2026, 11, 23, 11, 30, tzinfo=UTC)
    with pytest.raises(operate.OperateError, match="use a number"):
        operate.parse_since("yesterday")
