"""tasks.workflow spells the workflow file's facts once: its states, the Batch exit codes and
where each leads, and an execution's outcome. These tests hold it to workflows/pipeline.asl.json,
the job definition's retry strategy and the step events document."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tasks import names
from tasks.formats import keys
from tasks.workflow import (
    FAIL_STATES,
    ROUTES,
    ExitCode,
    Outcome,
    State,
    Verdict,
    batch_exit_code,
    classify,
    fail_state_of,
    route_of,
)
from tasks.workflow_definition import Definition

REPO = Path(__file__).resolve().parents[2]
DEFINITION: dict[str, Any] = dict(Definition.load().document)
STATES: dict[str, Any] = DEFINITION["States"]


def test_the_state_enum_is_exactly_the_workflow_files_states() -> None:
    assert sorted(State) == sorted(STATES)


def test_the_fail_states_are_the_workflow_files_fail_states() -> None:
    assert {name for name, state in STATES.items() if state["Type"] == "Fail"} == FAIL_STATES


def test_the_routes_are_where_route_by_size_leads_and_what_each_reports() -> None:
    # the fan-out is entered by planning its parts; FannedOut reports what the parts made
    entered_by = {State.PLAN_PARTS: State.CONVERT_PARTS}
    choice = STATES[State.ROUTE_BY_SIZE]
    nexts = {c["Next"] for c in choice["Choices"]} | {choice["Default"]}
    assert {entered_by.get(State(n), State(n)) for n in nexts} == set(ROUTES)
    for state, route in ROUTES.items():
        reports = (
            STATES[State.FANNED_OUT]["Parameters"]
            if state == State.CONVERT_PARTS
            else (STATES[state]["ResultSelector"])
        )
        assert reports["route"] == route
    assert set(ROUTES.values()) == set(names.ROUTES)


def _classify_batch_failure() -> dict[int, str]:
    """Exit code -> the state ClassifyBatchFailure sends it to, for each choice of the ASL."""
    found: dict[int, str] = {}
    for choice in STATES[State.CLASSIFY_BATCH_FAILURE]["Choices"]:
        (code,) = [c["NumericEquals"] for c in choice["And"] if "NumericEquals" in c]
        found[code] = choice["Next"]
    return found


def test_each_exit_code_leads_where_the_workflow_sends_it() -> None:
    # GIVEN the ASL: ConvertInBatch's Next for a job that succeeded, ClassifyBatchFailure's
    # choices (or its Default) for one that failed
    classify_state = STATES[State.CLASSIFY_BATCH_FAILURE]
    choices = _classify_batch_failure()
    for code in ExitCode:
        expected = (
            STATES[State.CONVERT_IN_BATCH]["Next"]
            if code is ExitCode.OK
            else choices.get(code, classify_state["Default"])
        )
        # THEN the enum says the same
        assert code.next_state == expected, code
    # and the ASL classifies no code the enum doesn't know
    assert set(choices) <= set(ExitCode)


def test_only_the_exit_codes_batch_retries_are_retried_by_the_job_definition() -> None:
    rules = names.BATCH_RETRY_STRATEGY["evaluateOnExit"]
    assert isinstance(rules, list)
    retried = {int(r["onExitCode"]) for r in rules if r["action"] == "RETRY"}
    assert retried == {code for code in ExitCode if code.retried_by_batch}
    assert rules[-1] == {"onExitCode": "*", "action": "EXIT"}  # the explicit catch-all


def test_every_exit_code_is_in_the_step_events_table() -> None:
    table = (REPO / "docs" / "step-events.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} | " in table, code
        assert code.meaning


def test_the_batch_failure_location_in_the_workflow_is_where_the_job_leaves_it() -> None:
    # GIVEN BatchConvertRejected's jobFailure (States.Format of the execution name)
    location = STATES[State.BATCH_CONVERT_REJECTED]["Parameters"]["jobFailure"]
    match = re.fullmatch(r"States\.Format\('([^']*)', \$\$\.Execution\.Name\)", location["key.$"])
    assert match, location["key.$"]
    # THEN the key is keys.batch_failure_key's, in the bucket the job writes to (plan.target)
    assert match.group(1).replace("{}", "orders-csv-0123") == keys.batch_failure_key(
        "orders-csv-0123"
    )
    assert location["bucket.$"] == "$.plan.target.bucket"


def test_every_rejection_tells_quarantine_its_state_and_job_failure() -> None:
    # every state that leads to Quarantine sets $.rejection with both fields (a JSONPath to a
    # missing field fails the task), and only the Batch rejection names a job failure
    into = [n for n, s in STATES.items() if s.get("Next") == State.QUARANTINE]
    assert sorted(into) == sorted(
        [
            State.VALIDATE_REJECTED,
            State.LAMBDA_CONVERT_REJECTED,
            State.BATCH_CONVERT_REJECTED,
            State.FAN_OUT_REJECTED,
        ]
    )
    for name in into:
        state = STATES[name]
        assert state["ResultPath"] == "$.rejection"
        assert set(state["Parameters"]) == {"failedState", "jobFailure"}
        assert state["Parameters"]["failedState"] in STATES
        assert (state["Parameters"]["jobFailure"] is None) == (name != State.BATCH_CONVERT_REJECTED)
    payload = STATES[State.QUARANTINE]["Parameters"]["Payload"]
    assert payload["failedState.$"] == "$.rejection.failedState"
    assert payload["jobFailure.$"] == "$.rejection.jobFailure"


def job(exit_code: int | None) -> str:
    container = {} if exit_code is None else {"ExitCode": exit_code}
    return json.dumps({"JobId": "j", "Container": container})


@pytest.mark.parametrize(
    ("status", "fail_state", "error", "cause", "verdict"),
    [
        ("SUCCEEDED", None, None, None, Verdict(Outcome.SUCCEEDED)),
        ("RUNNING", None, None, None, Verdict(Outcome.RUNNING)),
        ("FAILED", "Rejected", "ContractViolation", "{}", Verdict(Outcome.QUARANTINED)),
        ("FAILED", "Stale", "SourceMissing", "gone", Verdict(Outcome.STALE)),
        ("FAILED", None, "StorageUnavailable", "SlowDown", Verdict(Outcome.FAILED, True)),
        ("FAILED", None, "KeyError", "bug", Verdict(Outcome.FAILED, False)),
        ("TIMED_OUT", None, None, None, Verdict(Outcome.FAILED, True)),
        ("ABORTED", None, None, None, Verdict(Outcome.FAILED, False)),
        ("FAILED", "BatchSubmitFailed", "Batch.ClientException", "", Verdict(Outcome.FAILED, True)),
        ("FAILED", "BatchFailed", "States.TaskFailed", job(75), Verdict(Outcome.FAILED, True)),
        ("FAILED", "BatchFailed", "States.TaskFailed", job(None), Verdict(Outcome.FAILED, True)),
        ("FAILED", "BatchFailed", "States.TaskFailed", job(70), Verdict(Outcome.FAILED, False)),
        ("FAILED", "BatchFailed", "States.TaskFailed", job(137), Verdict(Outcome.FAILED, False)),
        # bad job parameters: another attempt does the same
        ("FAILED", "BatchFailed", "States.TaskFailed", job(64), Verdict(Outcome.FAILED, False)),
    ],
)
def test_classify(
    status: str, fail_state: str | None, error: str | None, cause: str | None, verdict: Verdict
) -> None:
    assert classify(status, fail_state=fail_state, error=error, cause=cause) == verdict


def test_outcomes_print_as_before() -> None:
    assert [str(o) for o in Outcome] == [
        "SUCCEEDED",
        "RUNNING",
        "QUARANTINED",
        "STALE",
        "REPLACED",
        "FAILED",
    ]
    assert json.dumps({"outcome": Outcome.QUARANTINED}) == '{"outcome": "QUARANTINED"}'


@pytest.mark.parametrize(
    ("entered", "fail_state", "route"),
    [
        ([], None, None),
        (["Validate", "RouteBySize", "ConvertInLambda", "Archive"], None, "lambda"),
        (["Validate", "ValidateRejected", "Quarantine", "Rejected"], "Rejected", None),
        (["RouteBySize", "ConvertInBatch", "CheckBatchCause", "Stale"], "Stale", "batch"),
        (
            ["ConvertInBatch", "BatchFailed", "ConvertInBatch", "BatchFailed"],
            "BatchFailed",
            "batch",
        ),
    ],
)
def test_fail_state_and_route_from_the_states_entered(
    entered: list[str], fail_state: str | None, route: str | None
) -> None:
    assert fail_state_of(entered) == fail_state
    assert route_of(entered) == route


@pytest.mark.parametrize("cause", [None, "", "plain", "[1]", '{"Container": []}', job(None)])
def test_no_exit_code_in_a_cause_without_one(cause: str | None) -> None:
    assert batch_exit_code(cause) is None


def test_only_uncompressed_and_zstd_files_fan_out() -> None:
    # a gzip/bz2 stream is read from its start (the sized Batch job); a zstd file may be cut
    # between its frames (the planner decides); a contract's budget is decided by the commit
    first = STATES[State.ROUTE_BY_SIZE]["Choices"][0]
    assert first["Next"] == State.PLAN_PARTS
    assert first["And"] == [
        {
            "Variable": "$.plan.file.size",
            "NumericGreaterThanEqualsPath": "$.config.fanOutThresholdBytes",
        },
        {
            "Or": [
                {"Variable": "$.plan.file.compression", "StringEquals": "none"},
                {"Variable": "$.plan.file.compression", "StringEquals": "zstd"},
            ]
        },
    ]


def test_a_file_the_planner_cannot_cut_takes_the_sized_batch_job() -> None:
    assert STATES[State.PLAN_PARTS]["Next"] == State.SPLITTABLE
    splittable = STATES[State.SPLITTABLE]
    assert splittable["Choices"] == [
        {"Variable": "$.fanout.parts", "NumericEquals": 0, "Next": State.CONVERT_IN_BATCH}
    ]
    assert splittable["Default"] == State.CONVERT_PARTS
