"""The workflow's test cases (chute.ops.mock_cases, pure) and the runner's AWS calls
(chute.ops.workflow_tests) with botocore's Stubber asserting the exact requests: Step Functions
Local's endpoint (no Docker needed) and TestState on AWS."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from chute.ops import mock_cases as mc
from chute.ops import workflow_tests as wt
from tasks.workflow import ExitCode, State
from tasks.workflow_definition import Definition

WORKFLOW = Definition.load(wt.DEFAULT_WORKFLOW)
DEFINITION: dict[str, Any] = dict(WORKFLOW.document)
CONFIG = mc.load_mock_config(wt.DEFAULT_MOCK_CONFIG)
EXPECTED = mc.load_expectations(mc.expectations_path(wt.DEFAULT_MOCK_CONFIG))
MACHINE = EXPECTED.state_machine
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def sfn_client() -> Any:
    return boto3.client(
        "stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


# --- the shipped suite covers every path ------------------------------------------------------
def test_the_shipped_suite_is_consistent() -> None:
    assert mc.check_suite(CONFIG, EXPECTED, DEFINITION) == []
    assert set(CONFIG.cases(MACHINE)) == set(EXPECTED.cases)


def test_every_state_is_on_some_case_path() -> None:
    visited = {s for e in EXPECTED.cases.values() for s in e.path}
    assert visited == {s.value for s in State}


def _last_throws(state: str) -> set[str]:
    """Errors some case ends ``state``'s attempts with (caught or failing); for a Map, the
    error an item that fails for good gives it (chute tolerates no failed item)."""
    found = set()
    items = WORKFLOW.item_states(state)
    for case, mocked in CONFIG.cases(MACHINE).items():
        if state not in EXPECTED.cases[case].path:
            continue
        for name in [state, *items]:
            if name in mocked and CONFIG.attempts(mocked[name])[-1].kind == "Throw":
                last = CONFIG.attempts(mocked[name])[-1]
                found.add(last.error if name == state else "States.ExceedToleratedFailureThreshold")
    return found


def _throws(state: str) -> set[str]:
    return {
        a.error
        for case, mocked in CONFIG.cases(MACHINE).items()
        if state in mocked and state in EXPECTED.cases[case].path
        for a in CONFIG.attempts(mocked[state])
        if a.kind == "Throw"
    }


@pytest.mark.parametrize(
    ("state", "index"),
    [(r.state, r.index) for r in WORKFLOW.rules("Catch")],
)
def test_every_catcher_is_taken_by_some_case(state: str, index: int) -> None:
    catcher = DEFINITION["States"][state]["Catch"][index]
    thrown = _last_throws(state)
    if catcher["ErrorEquals"] == ["States.ALL"]:  # the wildcard: an error no earlier catcher takes
        earlier = DEFINITION["States"][state]["Catch"][:index]
        thrown = (
            {"States.ALL"} if thrown - {n for c in earlier for n in c["ErrorEquals"]} else set()
        )
    assert set(catcher["ErrorEquals"]) & thrown, (state, catcher["ErrorEquals"])


@pytest.mark.parametrize(
    ("state", "index"),
    [(r.state, r.index) for r in WORKFLOW.rules("Retry")],
)
def test_every_retrier_is_exercised_by_some_case(state: str, index: int) -> None:
    retrier = DEFINITION["States"][state]["Retry"][index]
    names = set(retrier["ErrorEquals"])
    thrown = _throws(state)
    if "States.TaskFailed" in names:  # the wildcard: any error but States.Timeout
        thrown = {"States.TaskFailed"} if thrown - {"States.Timeout"} else set()
    assert names & thrown, (state, retrier["ErrorEquals"])


def test_every_batch_exit_code_has_a_case() -> None:
    codes = set()
    for mocked in CONFIG.cases(MACHINE).values():
        if State.CONVERT_IN_BATCH in mocked:
            for answer in CONFIG.attempts(mocked[State.CONVERT_IN_BATCH]):
                job = answer.payload if answer.kind == "Return" else _json(answer.cause)
                code = (job or {}).get("Container", {}).get("ExitCode")
                if code is not None:
                    codes.add(code)
    assert codes == {int(c) for c in ExitCode}


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def test_each_exit_code_case_goes_where_the_exit_code_says() -> None:
    for code in ExitCode:
        if code is ExitCode.OK:
            continue
        (case,) = [n for n in EXPECTED.cases if n.startswith(f"BatchExit{int(code)}")]
        path = EXPECTED.cases[case].path
        assert code.next_state in path, (case, code.next_state)


# --- the MockConfigFile format ----------------------------------------------------------------
GOOD: dict[str, Any] = {
    "StateMachines": {"m": {"TestCases": {"Happy": {"Task": "Ok"}}}},
    "MockedResponses": {
        "Ok": {"0": {"Return": {"x": 1}}},
        "Flaky": {"0-1": {"Throw": {"Error": "E", "Cause": "c"}}, "2": {"Return": {}}},
    },
}


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    *parents, last = path.split("/")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "the top level must be an object"),
        ({**GOOD, "Extra": {}}, "unknown top-level field"),
        (_with("StateMachines", {}), "StateMachines must be a non-empty object"),
        (_with("StateMachines/m", {"Cases": {}}), "StateMachines.m: needs a TestCases object"),
        (_with("StateMachines/m/TestCases/Happy/Task", "Missing"), "'Missing' is not in Mocked"),
        (_with("MockedResponses/Ok", {"first": {"Return": {}}}), "key 'first' is not"),
        (_with("MockedResponses/Ok", {"1": {"Return": {}}}), "consecutive from 0; expected 0"),
        (_with("MockedResponses/Ok", {"2-1": {"Return": {}}}), "ends before it starts"),
        (_with("MockedResponses/Ok/0", {"Return": {}, "Throw": {}}), "exactly one of"),
        (_with("MockedResponses/Ok/0", {"Throw": {"Cause": "c"}}), "Ok.0.Throw: needs an Error"),
    ],
)
def test_a_bad_mock_config_is_a_clear_error(data: Any, message: str) -> None:
    with pytest.raises(mc.MockConfigError, match=re.escape(message)):
        mc.parse_mock_config(data)


def test_attempt_ranges_expand_in_order() -> None:
    config = mc.parse_mock_config(GOOD)
    assert [a.kind for a in config.attempts("Flaky")] == ["Throw", "Throw", "Return"]


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(mc.MockConfigError, match="no such file"):
        mc.load_mock_config(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(mc.MockConfigError, match="not valid JSON"):
        mc.load_mock_config(tmp_path / "bad.json")


def test_a_case_mocking_too_little_is_caught_before_running() -> None:
    config = mc.parse_mock_config(GOOD)
    expected = mc.parse_expectations(
        {
            "stateMachine": "m",
            "cases": {
                "Happy": {"status": "SUCCEEDED", "path": ["Task", "Other"]},
                "Ghost": {"status": "SUCCEEDED", "path": ["Task"]},
            },
        }
    )
    definition = {"States": {"Task": {"Type": "Task"}, "Other": {"Type": "Task"}}}
    assert mc.check_suite(config, expected, definition) == [
        "case Ghost: expected, but not in the MockConfigFile",
        "case Happy: Task state Other is on the path but not mocked",
    ]


def test_a_maps_item_tasks_must_be_mocked_and_may_be() -> None:
    # GIVEN a Map whose items run a Task, and a case mocking the Map's item Task by name
    config = mc.parse_mock_config(
        {
            "StateMachines": {"m": {"TestCases": {"Mocked": {"Part": "Ok"}, "Bare": {}}}},
            "MockedResponses": GOOD["MockedResponses"],
        }
    )
    expected = mc.parse_expectations(
        {
            "stateMachine": "m",
            "cases": {
                "Mocked": {"status": "SUCCEEDED", "path": ["Parts"]},
                "Bare": {"status": "SUCCEEDED", "path": ["Parts"]},
            },
        }
    )
    item = {"StartAt": "Part", "States": {"Part": {"Type": "Task", "End": True}}}
    definition = {"States": {"Parts": {"Type": "Map", "ItemProcessor": item, "End": True}}}
    # THEN the case that mocks it is fine, the other is named
    assert mc.check_suite(config, expected, definition) == [
        "case Bare: item Task Part of Parts not mocked"
    ]


def test_a_failed_expectation_names_its_error() -> None:
    with pytest.raises(mc.MockConfigError, match="a FAILED case names its error"):
        mc.parse_expectations(
            {"stateMachine": "m", "cases": {"x": {"status": "FAILED", "path": ["A"]}}}
        )


def test_every_manifest_a_mocked_answer_names_is_put_by_the_suite() -> None:
    # GIVEN the mocked answers that start a fan-out round (the planner's, a commit's "again")
    named = set()
    for response in CONFIG.responses:
        for answer in CONFIG.attempts(response):
            payload = answer.payload.get("Payload") if answer.kind == "Return" else None
            fanout = (payload or {}).get("again", payload) if isinstance(payload, dict) else None
            if isinstance(fanout, dict) and fanout.get("manifest"):  # None: no parts
                named.add((fanout["bucket"], fanout["manifest"]))
    # THEN the Distributed Map finds each manifest: the suite puts it (ItemReader isn't a Task)
    assert named and named <= set(EXPECTED.objects)
    assert all(isinstance(EXPECTED.objects[k], list) for k in named)


def test_objects_are_named_by_s3_urls() -> None:
    base: dict[str, Any] = {
        "stateMachine": "m",
        "cases": {"x": {"status": "SUCCEEDED", "path": ["A"]}},
    }
    parsed = mc.parse_expectations({**base, "objects": {"s3://b/k/items.json": [1]}})
    assert parsed.objects == {("b", "k/items.json"): [1]}
    with pytest.raises(mc.MockConfigError, match="s3://bucket/key"):
        mc.parse_expectations({**base, "objects": {"b/k.json": []}})


def test_put_objects_creates_the_bucket_and_puts_each_document() -> None:
    from moto import mock_aws

    expected = mc.Expectations("m", {}, {}, objects={("fresh", "a/items.json"): [{"i": 0}]})
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        wt.put_objects(s3, expected)
        wt.put_objects(s3, expected)  # again: the bucket is there already
        body = s3.get_object(Bucket="fresh", Key="a/items.json")["Body"].read()
    assert json.loads(body) == [{"i": 0}]


# --- judging an execution ---------------------------------------------------------------------
def _event(kind: str, name: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind}
    if name:
        event["stateEnteredEventDetails"] = {"name": name}
    return event


def test_the_path_and_attempts_come_from_the_history() -> None:
    events = [
        _event("ExecutionStarted"),
        _event("PassStateEntered", "LoadConfig"),
        _event("TaskStateEntered", "Validate"),
        _event("TaskScheduled"),
        _event("TaskFailed"),
        _event("TaskScheduled"),
        _event("ChoiceStateEntered", "RouteBySize"),
    ]
    observed = mc.observe({"status": "RUNNING"}, events)
    assert observed.path == ("LoadConfig", "Validate", "RouteBySize")
    assert observed.attempts == {"Validate": 2}


def test_a_case_that_retries_less_than_mocked_fails() -> None:
    expected = mc.Expectation("FAILED", ("A",), "E")
    observed = mc.Observed("FAILED", "E", ("A",), {"A": 3})
    result = mc.judge("c", expected, observed, {"A": 5})
    assert result.problems == ("A: 3 attempts, the case mocks 5",)


# --- one state at a time ----------------------------------------------------------------------
def _state_case(name: str) -> mc.StateCase:
    return next(c for c in mc.state_cases(CONFIG, EXPECTED) if c.name == name)


def test_state_cases_follow_from_the_case_paths() -> None:
    retried = _state_case("Validate/ValidateStorageUnavailableThenSmallFile#0")
    assert (retried.status, retried.error, retried.retrier_retry_count) == (
        "RETRIABLE",
        "StorageUnavailable",
        0,
    )
    then = _state_case("Validate/ValidateStorageUnavailableThenSmallFile#1")
    assert (then.status, then.next_state) == ("SUCCEEDED", "RouteBySize")
    exhausted = _state_case("Validate/StorageUnavailableFiveTimes#4")
    assert (exhausted.status, exhausted.error, exhausted.retrier_retry_count) == (
        "FAILED",
        "StorageUnavailable",
        4,
    )
    caught = _state_case("Validate/ThrowInvalidFile#0")
    assert (caught.status, caught.next_state) == ("CAUGHT_ERROR", "ValidateRejected")
    assert len(caught.cases) > 1  # the same attempt in several cases: tested once


def test_contradictory_expectations_are_refused() -> None:
    data = json.loads(mc.expectations_path(wt.DEFAULT_MOCK_CONFIG).read_text())
    data["cases"]["ValidateRejectsInvalidFile"]["path"][2] = "Stale"
    with pytest.raises(mc.MockConfigError, match="contradictory expectations"):
        mc.state_cases(CONFIG, mc.parse_expectations(data))


def test_a_test_state_request_mocks_the_state_within_the_whole_definition() -> None:
    case = _state_case("Validate/ValidateStorageUnavailableThenSmallFile#0")
    request = mc.test_state_request(
        case, definition="{...}", role_arn="arn:role", expectations=EXPECTED
    )
    assert request == {
        "definition": "{...}",
        "stateName": "Validate",
        "input": json.dumps(EXPECTED.state_input, separators=(",", ":")),
        "inspectionLevel": "DEBUG",
        "mock": {
            "errorOutput": {"error": "StorageUnavailable", "cause": "mocked StorageUnavailable"}
        },
        "roleArn": "arn:role",
        "context": json.dumps(EXPECTED.state_context, separators=(",", ":")),
        "stateConfiguration": {"retrierRetryCount": 0},
    }


def test_run_test_states_sends_exactly_these_requests() -> None:
    # GIVEN two state cases of the shipped suite and a stubbed TestState
    sfn = sfn_client()
    cases = [
        _state_case("Validate/ValidateSmallFile#0"),
        _state_case("ConvertInBatch/BatchJobExits65#0"),
    ]
    small = CONFIG.attempts("ValidateSmallFile")[0].payload
    job_cause = CONFIG.attempts("BatchJobExits65")[0].cause
    common = {
        "definition": "DEF",
        "roleArn": "arn:aws:iam::111122223333:role/chute-workflow",
        "input": json.dumps(EXPECTED.state_input, separators=(",", ":")),
        "inspectionLevel": "DEBUG",
        "context": json.dumps(EXPECTED.state_context, separators=(",", ":")),
    }
    with Stubber(sfn) as stub:
        stub.add_response(
            "test_state",
            {"status": "SUCCEEDED", "nextState": "RouteBySize", "output": "{}"},
            {
                **common,
                "stateName": "Validate",
                "mock": {
                    "result": json.dumps(small, separators=(",", ":")),
                    "fieldValidationMode": "PRESENT",
                },
            },
        )
        stub.add_response(
            "test_state",
            {"status": "FAILED", "error": "States.TaskFailed", "cause": job_cause},
            {
                **common,
                "stateName": "ConvertInBatch",
                "mock": {"errorOutput": {"error": "States.TaskFailed", "cause": job_cause}},
                "stateConfiguration": {"retrierRetryCount": 0},
            },
        )
        # WHEN they run
        results = wt.run_test_states(
            sfn,
            cases,
            definition="DEF",
            role_arn="arn:aws:iam::111122223333:role/chute-workflow",
            expectations=EXPECTED,
        )
        stub.assert_no_pending_responses()
    # THEN the first is as expected; the second was expected CAUGHT_ERROR -> CheckBatchCause
    assert results[0].ok
    assert results[1].problems[0] == "status FAILED, expected CAUGHT_ERROR"


# --- whole executions on an endpoint (Step Functions Local), stubbed --------------------------
def test_run_cases_creates_the_machine_and_judges_each_case() -> None:
    suite = wt.Suite.load()
    sfn = sfn_client()
    machine_arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:{MACHINE}"
    execution = machine_arn.replace(":stateMachine:", ":execution:") + ":run"
    expected = EXPECTED.cases["ValidateSourceMissingStale"]
    events = [{"id": 1, "type": "ExecutionStarted", "timestamp": NOW}]
    for i, state in enumerate(expected.path, start=2):
        events.append(
            {
                "id": i,
                "type": "TaskStateEntered",
                "timestamp": NOW,
                "stateEnteredEventDetails": {"name": state},
            }
        )
        if state in ("Validate", "AnnounceStale"):
            events.append({"id": 100 + i, "type": "TaskScheduled", "timestamp": NOW})
    describe = {
        "executionArn": execution,
        "stateMachineArn": machine_arn,
        "startDate": NOW,
    }
    with Stubber(sfn) as stub:
        stub.add_response("list_state_machines", {"stateMachines": []}, {})
        stub.add_response(
            "create_state_machine",
            {"stateMachineArn": machine_arn, "creationDate": NOW},
            {
                "name": MACHINE,
                "definition": suite.definition,
                "roleArn": wt.SFN_LOCAL_ROLE,
                "type": "STANDARD",
            },
        )
        stub.add_response(
            "start_execution",
            {"executionArn": execution, "startDate": NOW},
            {
                "stateMachineArn": f"{machine_arn}#ValidateSourceMissingStale",
                "name": ANY,
                "input": json.dumps(EXPECTED.input),
            },
        )
        stub.add_response("describe_execution", {**describe, "status": "RUNNING"})
        stub.add_response(
            "describe_execution", {**describe, "status": "FAILED", "error": "SourceMissing"}
        )
        stub.add_response("get_execution_history", {"events": events}, {"executionArn": execution})
        arn = wt.ensure_state_machine(sfn, MACHINE, suite.definition, wt.SFN_LOCAL_ROLE)
        (result,) = wt.run_cases(
            sfn, arn, suite, ["ValidateSourceMissingStale"], sleep=lambda _: None
        )
        stub.assert_no_pending_responses()
    assert result.ok, result.problems


def test_a_case_that_does_not_finish_is_reported() -> None:
    suite = wt.Suite.load()
    sfn = sfn_client()
    ticks = iter(range(100))
    with Stubber(sfn) as stub:
        stub.add_response(
            "start_execution",
            {
                "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:x",
                "startDate": NOW,
            },
        )
        for _ in range(3):
            stub.add_response(
                "describe_execution",
                {
                    "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:x",
                    "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
                    "status": "RUNNING",
                    "startDate": NOW,
                },
            )
        (result,) = wt.run_cases(
            sfn,
            "arn:aws:states:us-east-1:123456789012:stateMachine:m",
            suite,
            ["LambdaRouteSucceeds"],
            timeout=2,
            sleep=lambda _: None,
            clock=lambda: float(next(ticks)),
        )
    assert result.problems == ("still RUNNING after 2s",)


def test_an_endpoint_that_is_not_there_is_a_clear_error() -> None:
    from chute.local.embedded import free_port

    with pytest.raises(wt.TargetError, match="docker compose up -d"):
        wt.endpoint_target(wt.Suite.load(), f"http://127.0.0.1:{free_port()}")


def test_test_workflow_on_a_stack_runs_test_state_on_the_deployed_definition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a deployed stack (its state machine stubbed) and one chosen case
    from typer.testing import CliRunner

    from chute.cli import app
    from chute.ops import deployment

    sfn = sfn_client()
    machine = "arn:aws:states:us-east-1:111122223333:stateMachine:Chute-Pipeline"
    role = "arn:aws:iam::111122223333:role/Chute-Workflow"
    monkeypatch.setattr(
        deployment,
        "connect",
        lambda **kwargs: deployment.Deployment(
            sfn=sfn,
            s3=None,
            state_machine_arn=machine,
            staging_bucket="s",
            quarantine_bucket="q",
            output_bucket="o",
            region="us-east-1",
            on_aws=True,
        ),
    )
    throw = CONFIG.attempts("ThrowSourceMissing")[0]
    with Stubber(sfn) as stub:
        stub.add_response(
            "describe_state_machine",
            {
                "stateMachineArn": machine,
                "name": "Chute-Pipeline",
                "definition": "DEPLOYED",
                "roleArn": role,
                "type": "STANDARD",
                "creationDate": NOW,
            },
            {"stateMachineArn": machine},
        )
        stub.add_response("test_state", {"status": "SUCCEEDED", "nextState": "Stale"})
        stub.add_response(
            "test_state",
            {"status": "CAUGHT_ERROR", "nextState": "AnnounceStale", "error": "SourceMissing"},
            {
                "definition": "DEPLOYED",
                "stateName": "Validate",
                "roleArn": role,
                "input": ANY,
                "context": ANY,
                "inspectionLevel": "DEBUG",
                "mock": {"errorOutput": {"error": throw.error, "cause": throw.cause}},
                "stateConfiguration": {"retrierRetryCount": 0},
            },
        )
        # WHEN the operator tests that case on the stack
        result = CliRunner().invoke(
            app,
            ["test-workflow", "--stack", "Chute", "--case", "ValidateSourceMissingStale", "--json"],
        )
        stub.assert_no_pending_responses()
    # THEN the one mocked state was tested through TestState and passed
    assert result.exit_code == 0, result.output
    announce, row = json.loads(result.output)
    assert (announce["state"], announce["ok"]) == ("AnnounceStale", True)
    assert (row["state"], row["ok"], row["observed"]["nextState"]) == (
        "Validate",
        True,
        "AnnounceStale",
    )
