"""Scheduled auto-redrive: only transient failures, at most N redrives each, RedriveExecution on
the execution's own ARN, and the cap reported once."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tasks import entry
from tasks.adapters.sfn import FailedExecutions
from tasks.models import FailedExecution
from tasks.redrive import handler as redrive_handler
from tasks.redrive.domain import (
    is_transient,
    redrive_failed,
)
from tasks.settings import RedriveSettings
from tasks.workflow import RETRIED_ERRORS
from tasks.workflow_definition import Definition

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MACHINE = "arn:aws:states:us-east-1:111122223333:stateMachine:chute-pipeline"
EXECUTION = "arn:aws:states:us-east-1:111122223333:execution:chute-pipeline:"
SETTINGS = RedriveSettings(state_machine_arn=MACHINE, max_redrives=3, every_minutes=15)


def test_what_counts_as_transient_is_what_the_workflow_retries() -> None:
    retried = {e for rule in Definition.load().rules("Retry") for e in rule.errors}
    assert retried == RETRIED_ERRORS


def failed(
    name: str = "orders-csv-1",
    *,
    status: str = "FAILED",
    error: str | None = "StorageUnavailable",
    cause: str | None = "S3 answered SlowDown",
    fail_state: str | None = None,
    redrives: int = 0,
    stopped: datetime = NOW - timedelta(minutes=5),
) -> FailedExecution:
    return FailedExecution(
        arn=EXECUTION + name,
        name=name,
        status=status,
        stopped=stopped,
        error=error,
        cause=cause,
        fail_state=fail_state,
        redrive_count=redrives,
    )


def batch_cause(exit_code: int | None) -> str:
    container = {} if exit_code is None else {"ExitCode": exit_code}
    return json.dumps({"JobId": "j", "Container": container})


@pytest.mark.parametrize(
    ("execution", "transient"),
    [
        (failed(), True),
        (failed(error="Lambda.TooManyRequestsException"), True),
        (failed(error="States.Timeout"), True),
        (failed(status="TIMED_OUT", error=None), True),
        (failed(fail_state="BatchFailed", error="States.TaskFailed", cause=batch_cause(75)), True),
        # the job never exited: host terminated, attempt timeout
        (
            failed(fail_state="BatchFailed", error="States.TaskFailed", cause=batch_cause(None)),
            True,
        ),
        # a bug or bad parameters in the job: another attempt does the same
        (failed(fail_state="BatchFailed", error="States.TaskFailed", cause=batch_cause(70)), False),
        (failed(fail_state="BatchFailed", error="States.TaskFailed", cause=batch_cause(64)), False),
        (failed(fail_state="Rejected", error="ContractViolation"), False),
        # a Batch rejection keeps States.TaskFailed as its error: the Fail state tells
        (failed(fail_state="Rejected", error="States.TaskFailed", cause=batch_cause(65)), False),
        (failed(fail_state="Stale", error="SourceMissing"), False),
        (failed(error="KeyError"), False),  # a bug in a step
        (failed(status="ABORTED", error=None), False),  # a person stopped it
    ],
)
def test_only_transient_failures_are_redriven(execution: FailedExecution, transient: bool) -> None:
    assert is_transient(execution) is transient


class FakeExecutions:
    def __init__(
        self,
        executions: list[FailedExecution],
        rerun: Iterable[str] = (),
        refuse: Iterable[str] = (),
    ) -> None:
        self.executions = executions
        self.rerun = set(rerun)
        self.refuse = set(refuse)
        self.redriven: list[str] = []
        self.restarted: list[str] = []
        self.since: datetime | None = None

    def failed_since(self, since: datetime) -> Iterable[FailedExecution]:
        self.since = since
        return self.executions

    def rerun_exists(self, execution: FailedExecution) -> bool:
        return execution.name in self.rerun

    def redrive(self, execution: FailedExecution) -> bool:
        if execution.name in self.refuse:
            return False
        self.redriven.append(execution.name)
        return True

    def restart(self, execution: FailedExecution) -> bool:
        if execution.name in self.refuse:
            return False
        self.restarted.append(execution.name)
        return True


def emf_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


def test_a_run_redrives_transient_failures_under_the_cap(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = FakeExecutions(
        [
            failed("transient"),
            failed("twice", redrives=2),
            failed("capped-now", redrives=3),
            failed("capped-long-ago", redrives=3, stopped=NOW - timedelta(hours=5)),
            failed("quarantined", fail_state="Rejected", error="InvalidFile"),
            failed("restarted-by-hand"),
            failed("too-old-to-redrive"),
        ],
        rerun=["restarted-by-hand"],
        refuse=["too-old-to-redrive"],
    )
    report = redrive_handler_run(fake)
    assert fake.since == NOW - timedelta(hours=24)
    assert fake.redriven == ["transient", "twice"]
    assert report.redriven == ["transient", "twice"]
    assert report.capped == ["capped-now", "capped-long-ago"]
    assert report.skipped == {
        "quarantined": "not_transient",
        "restarted-by-hand": "already_rerun",
        "too-old-to-redrive": "not_redrivable",
    }
    out = capsys.readouterr().out
    (document,) = emf_lines(out)
    # two redrives; the cap counted once, for the execution that just failed at it
    assert document["ExecutionsRedriven"] == [1.0, 1.0]
    assert document["RedrivesExhausted"] == [1.0]
    logged = [json.loads(line) for line in out.splitlines() if '"message"' in line]
    assert [(e["message"], e["execution"]) for e in logged if "execution" in e] == [
        ("execution redriven", "transient"),
        ("execution redriven", "twice"),
        ("redrives exhausted", "capped-now"),
    ]


def test_a_transient_failure_in_a_fail_state_is_restarted_once_not_redriven(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN transient failures that ended in the workflow's Fail states (a redrive would resume
    # at the Fail state and fail again there), one already restarted, one a restart itself
    def batch(name: str, state: str = "BatchFailed", redrives: int = 0) -> FailedExecution:
        return failed(
            name,
            fail_state=state,
            error="States.TaskFailed",
            cause=batch_cause(75),
            redrives=redrives,
        )

    fake = FakeExecutions(
        [
            batch("job-killed"),
            failed("submit-refused", fail_state="BatchSubmitFailed", error="Batch.ServerException"),
            batch("restarted-already"),
            batch("job-killed-rerun"),
            batch("lost-race"),
            batch("redriven-before-the-fix", redrives=3),
        ],
        rerun=["restarted-already"],
        refuse=["lost-race"],
    )
    # WHEN the auto-redrive runs
    report = redrive_handler_run(fake)
    # THEN they are restarted as new executions, never redriven; each at most once
    assert fake.redriven == []
    assert fake.restarted == ["job-killed", "submit-refused", "redriven-before-the-fix"]
    assert report.restarted == fake.restarted
    assert report.capped == ["job-killed-rerun"]
    assert report.skipped == {"restarted-already": "already_rerun", "lost-race": "already_rerun"}
    logged = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"message"' in line
    ]
    assert ("execution restarted", "job-killed", "job-killed-rerun") in [
        (e["message"], e.get("execution"), e.get("new_execution")) for e in logged
    ]


def redrive_handler_run(fake: FakeExecutions) -> Any:
    from tasks import metrics

    try:
        return redrive_failed(fake, SETTINGS, NOW, metrics.Recorder())
    finally:
        metrics.get_metrics().flush_metrics()


# --- the adapter: exact Step Functions requests -------------------------------------------------


def test_the_adapter_reads_failures_and_redrives_by_execution_arn() -> None:
    client = boto3.client(
        "stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    arn = EXECUTION + "orders-csv-1"
    with Stubber(client) as stub:
        stub.add_response(
            "list_executions",
            {
                "executions": [
                    {
                        "executionArn": arn,
                        "stateMachineArn": MACHINE,
                        "name": "orders-csv-1",
                        "status": "FAILED",
                        "startDate": NOW - timedelta(hours=1),
                    },
                    {
                        "executionArn": EXECUTION + "old",
                        "stateMachineArn": MACHINE,
                        "name": "old",
                        "status": "FAILED",
                        "startDate": NOW - timedelta(days=3),
                    },
                ],
                "nextToken": "more",  # not followed: the page ended before the window
            },
            {"stateMachineArn": MACHINE, "statusFilter": "FAILED"},
        )
        stub.add_response(
            "describe_execution",
            {
                "executionArn": arn,
                "stateMachineArn": MACHINE,
                "name": "orders-csv-1",
                "status": "FAILED",
                "startDate": NOW - timedelta(hours=1),
                "stopDate": NOW - timedelta(minutes=50),
                "error": "StorageUnavailable",
                "cause": "S3 answered SlowDown",
                "redriveCount": 1,
            },
            {"executionArn": arn},
        )
        stub.add_response(
            "get_execution_history",
            {"events": [{"timestamp": NOW, "type": "ExecutionFailed", "id": 9}]},
            {"executionArn": arn, "reverseOrder": True, "maxResults": 5},
        )
        # each failure is acted on as it is read
        stub.add_client_error(
            "describe_execution",
            "ExecutionDoesNotExist",
            expected_params={"executionArn": arn + "-rerun"},
        )
        stub.add_response("redrive_execution", {"redriveDate": NOW}, {"executionArn": arn})
        stub.add_response(
            "list_executions",
            {"executions": []},
            {"stateMachineArn": MACHINE, "statusFilter": "TIMED_OUT"},
        )
        report = redrive_failed(FailedExecutions(MACHINE, client), SETTINGS, NOW)
        stub.assert_no_pending_responses()
    assert report.redriven == ["orders-csv-1"]


def test_the_adapter_restarts_by_a_fixed_name_with_the_original_input() -> None:
    client = boto3.client(
        "stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    execution = failed("orders-csv-1", fail_state="BatchFailed")
    original = {
        "executionArn": execution.arn,
        "stateMachineArn": MACHINE,
        "name": execution.name,
        "status": "FAILED",
        "startDate": NOW - timedelta(hours=1),
        "input": '{"detail": {"object": {"key": "orders.csv"}}}',
    }
    with Stubber(client) as stub:
        stub.add_response("describe_execution", original, {"executionArn": execution.arn})
        stub.add_response(
            "start_execution",
            {"executionArn": execution.arn + "-rerun", "startDate": NOW},
            {"stateMachineArn": MACHINE, "name": "orders-csv-1-rerun", "input": original["input"]},
        )
        stub.add_response("describe_execution", original, {"executionArn": execution.arn})
        stub.add_client_error(
            "start_execution",
            "ExecutionAlreadyExists",
            expected_params={
                "stateMachineArn": MACHINE,
                "name": "orders-csv-1-rerun",
                "input": original["input"],
            },
        )
        adapter = FailedExecutions(MACHINE, client)
        assert adapter.restart(execution) is True
        assert adapter.restart(execution) is False  # idempotent: the name is fixed
        stub.assert_no_pending_responses()


def test_a_failure_in_a_fail_state_is_read_from_the_history() -> None:
    client = boto3.client(
        "stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_response(
            "get_execution_history",
            {
                "events": [
                    {"timestamp": NOW, "type": "ExecutionFailed", "id": 12},
                    {
                        "timestamp": NOW,
                        "type": "FailStateEntered",
                        "id": 11,
                        "stateEnteredEventDetails": {"name": "Rejected"},
                    },
                ]
            },
        )
        assert FailedExecutions(MACHINE, client)._fail_state(EXECUTION + "x") == "Rejected"


def test_the_handler_runs_with_its_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTE_STATE_MACHINE_ARN", MACHINE)
    monkeypatch.setenv("CHUTE_MAX_REDRIVES", "1")
    entry.reset()
    fake = FakeExecutions([failed("once", redrives=0), failed("again", redrives=1)])
    monkeypatch.setattr(redrive_handler, "_executions", lambda: fake)
    try:
        result = redrive_handler.handler({"source": "aws.scheduler"}, None)
    finally:
        entry.reset()
    assert result == {"redriven": ["once"], "restarted": [], "capped": ["again"], "skipped": {}}
