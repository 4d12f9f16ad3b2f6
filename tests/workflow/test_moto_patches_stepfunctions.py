"""Step Functions (chute/local/moto_patches/stepfunctions.py): the interpreter's behaviour and
speed.

How these tests go: tests/support/moto_patches.py.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from chute.local.embedded import EmbeddedAws
from tests.support.moto_patches import PASS, finish, machine, without
from tests.support.pipeline import wait_until


def test_unnamed_execution_gets_a_unique_name(embedded: EmbeddedAws) -> None:
    arn = machine(embedded, "probe-unnamed", PASS)
    first, second = finish(embedded, arn), finish(embedded, arn)
    assert not first["executionArn"].endswith(":None")
    assert first["executionArn"] != second["executionArn"]


@pytest.mark.canary
def test_canary_unnamed_execution_is_still_named_none(embedded: EmbeddedAws) -> None:
    arn = machine(embedded, "probe-unnamed-canary", PASS)
    with without("sfn-unnamed-execution"):
        desc = finish(embedded, arn)
    assert desc["executionArn"].endswith(":None")


FAIL_WITH_STATES_ERROR = {
    "StartAt": "F",
    "States": {"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}},
}


def test_fail_state_passes_on_a_states_error(embedded: EmbeddedAws) -> None:
    arn = machine(embedded, "probe-fail", FAIL_WITH_STATES_ERROR)
    desc = finish(embedded, arn, input=json.dumps({"e": "States.TaskFailed", "c": "why"}))
    assert (desc["error"], desc["cause"]) == ("States.TaskFailed", "why")


@pytest.mark.canary
def test_canary_fail_state_with_states_error_still_breaks(embedded: EmbeddedAws) -> None:
    arn = machine(embedded, "probe-fail-canary", FAIL_WITH_STATES_ERROR)
    with without("sfn-fail-states-error"):
        desc = finish(embedded, arn, input=json.dumps({"e": "States.TaskFailed", "c": "why"}))
    assert desc["error"] == "States.Runtime"


def _batch_machine(embedded: EmbeddedAws, name: str) -> str:
    subs = embedded.substitutions()
    return machine(
        embedded,
        name,
        {
            "StartAt": "Job",
            "States": {
                "Job": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::batch:submitJob.sync",
                    "Parameters": {
                        "JobName": "probe",
                        "JobQueue": subs["BatchJobQueueArn"],
                        "JobDefinition": subs["BatchJobDefinitionArn"],
                    },
                    "End": True,
                }
            },
        },
    )


def test_batch_sync_uses_aws_casing_both_ways(embedded: EmbeddedAws) -> None:
    embedded.inject_batch_exit(0)  # don't run the converter: only the integration is probed
    desc = finish(embedded, _batch_machine(embedded, "probe-batch"))
    assert desc["status"] == "SUCCEEDED", desc.get("cause")
    output = json.loads(desc["output"])
    assert output["Status"] == "SUCCEEDED"
    assert output["Container"]["ExitCode"] == 0
    assert "JobId" in output


@pytest.mark.canary
def test_canary_batch_sync_request_casing_still_breaks(embedded: EmbeddedAws) -> None:
    arn = _batch_machine(embedded, "probe-batch-request-canary")
    with without("sfn-batch-casing-request"):
        desc = finish(embedded, arn)
    assert desc["error"] == "States.Runtime"
    assert "JobName" in desc["cause"]


@pytest.mark.canary
def test_canary_batch_sync_response_casing_still_differs(embedded: EmbeddedAws) -> None:
    embedded.inject_batch_exit(0)
    arn = _batch_machine(embedded, "probe-batch-response-canary")
    with without("sfn-batch-casing-response"):
        desc = finish(embedded, arn)
    # the .sync resolver itself looks up "JobId" in the uncased SubmitJob result
    assert desc["error"] == "States.Runtime"
    assert "JobId" in desc["cause"]


# --- speed: the endpoint's own work per execution and per request ----------------------------
SHAPING_PASS = {
    "StartAt": "Shape",
    "States": {
        "Shape": {
            "Type": "Pass",
            "Parameters": {"n.$": "$.n", "pair.$": "States.ArrayLength(States.Array($.n, $.n))"},
            "ResultPath": "$.shaped",
            "Next": "Done",
        },
        "Done": {"Type": "Pass", "OutputPath": "$.shaped", "End": True},
    },
}


@contextmanager
def _count_parses() -> Iterator[list[int]]:
    """How many times the ASL lexer runs (one per full parse of a definition)."""
    from moto.stepfunctions.parser.asl.parse import asl_parser

    real = asl_parser.ASLLexer
    calls = [0]

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    asl_parser.ASLLexer = counting  # type: ignore[assignment,misc]
    try:
        yield calls
    finally:
        asl_parser.ASLLexer = real  # type: ignore[misc]


def test_executions_reuse_the_parsed_definition_and_keep_their_own_state(
    embedded: EmbeddedAws,
) -> None:
    # GIVEN a state machine that has run once
    arn = machine(embedded, "probe-parse-once", SHAPING_PASS)
    finish(embedded, arn, input=json.dumps({"n": 0}))
    sfn = embedded.client("stepfunctions")
    # WHEN five more executions with different inputs run at the same time
    with _count_parses() as parses:
        arns = [
            sfn.start_execution(stateMachineArn=arn, input=json.dumps({"n": n}))["executionArn"]
            for n in range(1, 6)
        ]

        def outputs() -> list[Any] | None:
            described = [sfn.describe_execution(executionArn=a) for a in arns]
            if any(d["status"] == "RUNNING" for d in described):
                return None
            return [json.loads(d.get("output") or "null") for d in described]

        results = wait_until(outputs, what="executions finished")
    # THEN none parsed the definition again, and each computed its own result
    assert parses[0] == 0
    assert results == [{"n": n, "pair": 2} for n in range(1, 6)]


def test_executions_starting_together_parse_a_new_definition_once() -> None:
    from chute.local.moto_patches.stepfunctions import program_of

    # GIVEN a definition no execution has run yet
    definition = json.dumps({**SHAPING_PASS, "Comment": f"probe {uuid.uuid4()}"})
    start = threading.Barrier(8)
    programs: list[Any] = []

    def first_state() -> None:
        start.wait()
        programs.append(program_of(definition))

    # WHEN eight executions ask for its program at the same moment (a backlog's first burst)
    with _count_parses() as parses:
        threads = [threading.Thread(target=first_state) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    # THEN one parsed it and the others waited for its program
    assert parses[0] == 1
    assert len(programs) == 8 and all(p is programs[0] for p in programs)


@pytest.mark.canary
def test_canary_every_execution_still_parses_the_definition(embedded: EmbeddedAws) -> None:
    arn = machine(embedded, "probe-parse-once-canary", SHAPING_PASS)
    with without("sfn-parse-once"), _count_parses() as parses:
        finish(embedded, arn, input=json.dumps({"n": 1}))
        finish(embedded, arn, input=json.dumps({"n": 2}))
    assert parses[0] == 2


@contextmanager
def _requests_served() -> Iterator[list[str]]:
    """What reaches the endpoint's HTTP server meanwhile: each request's X-Amz-Target or path."""
    from chute.local.moto_patches import HOOKS

    seen: list[str] = []
    before = HOOKS.request_filter

    def record(environ: dict[str, Any]) -> Any:
        seen.append(environ.get("HTTP_X_AMZ_TARGET") or environ.get("PATH_INFO", ""))
        return before(environ) if before else None

    HOOKS.request_filter = record
    try:
        yield seen
    finally:
        HOOKS.request_filter = before


def test_task_states_call_in_process_with_one_client_per_service(embedded: EmbeddedAws) -> None:
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    # GIVEN the interpreter's client for a service: one per service and region
    first = boto_client_for(region="us-east-1", service="sns")
    assert boto_client_for(region="us-east-1", service="sns") is first
    assert boto_client_for(region="us-east-1", service="sqs") is not first
    # WHEN a machine's Task state sends a message
    arn = _task_machine(embedded, "probe-in-process")
    with _requests_served() as served:
        assert finish(embedded, arn)["status"] == "SUCCEEDED"
    # THEN the call was answered in process: the server saw the test's own calls only
    assert "AmazonSQS.SendMessage" not in served
    assert "AWSStepFunctions.StartExecution" in served
    # ... by the same backends the endpoint serves
    sqs = embedded.client("sqs")
    url = sqs.get_queue_url(QueueName="probe-in-process-sink")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in messages] == ["x"]
    assert "probe-in-process-sink" in str(
        boto_client_for(region="us-east-1", service="sqs").list_queues()
    )


def test_a_request_no_backend_answers_fails_without_leaving() -> None:
    import botocore.exceptions
    from botocore.awsrequest import AWSPreparedRequest

    from chute.local.moto_patches.stepfunctions import _InProcess

    request = AWSPreparedRequest("GET", "https://example.invalid/x", {}, None, False)
    with pytest.raises(botocore.exceptions.EndpointConnectionError, match=r"example\.invalid"):
        _InProcess()(request)


@pytest.mark.canary
def test_canary_task_states_still_call_the_endpoint_over_http(embedded: EmbeddedAws) -> None:
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    arn = _task_machine(embedded, "probe-in-process-canary")
    with without("sfn-clients-in-process"), _requests_served() as served:
        first = boto_client_for(region="us-east-1", service="sns")
        assert boto_client_for(region="us-east-1", service="sns") is not first
        assert finish(embedded, arn)["status"] == "SUCCEEDED"
    assert "AmazonSQS.SendMessage" in served


def test_jsonpath_expressions_are_parsed_once(embedded: EmbeddedAws) -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    assert json_path.parse("$.source.key") is json_path.parse("$.source.key")
    assert result_path.parse("$.plan") is result_path.parse("$.plan")
    assert json_path.extract_json("$.a.b", {"a": {"b": 7}}) == 7


@pytest.mark.canary
def test_canary_jsonpath_expressions_are_still_parsed_every_time(embedded: EmbeddedAws) -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    with without("sfn-jsonpath-cache"), without("sfn-result-path-cache"):
        assert json_path.parse("$.source.key") is not json_path.parse("$.source.key")
        assert result_path.parse("$.plan") is not result_path.parse("$.plan")


# --- sfn-threads-* (memory) -------------------------------------------------------------------
def _task_machine(embedded: EmbeddedAws, name: str) -> str:
    """Pass, then a Task (sqs:sendMessage to a queue of its own): threads of the program, the
    execution worker and the Task's evaluation."""
    url = embedded.client("sqs").create_queue(QueueName=f"{name}-sink")["QueueUrl"]
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage",
        "Parameters": {"QueueUrl": url, "MessageBody": "x"},
        "End": True,
    }
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "T"}, "T": task}}
    return machine(embedded, name, definition)


def _keepers() -> dict[str, Any]:
    import importlib

    from chute.local.moto_patches.stepfunctions import _THREAD_KEEPERS

    return {
        name: importlib.import_module(f"moto.stepfunctions.parser.{module}")
        for name, module in _THREAD_KEEPERS.items()
    }


def test_the_interpreter_keeps_only_running_threads(embedded: EmbeddedAws) -> None:
    from chute.local.moto_patches.stepfunctions import LIVE_THREADS

    arn = _task_machine(embedded, "probe-threads")
    assert all(m.TMP_THREADS is LIVE_THREADS for m in _keepers().values())
    for _ in range(60):  # >= 3 threads each: ~180 appended
        assert finish(embedded, arn)["status"] == "SUCCEEDED"
    assert len(LIVE_THREADS) <= 128


@pytest.mark.canary
def test_canary_the_interpreter_still_keeps_every_thread(embedded: EmbeddedAws) -> None:
    arn = _task_machine(embedded, "probe-threads-canary")
    names = (
        "sfn-threads-program",
        "sfn-threads-state",
        "sfn-threads-worker",
        "sfn-threads-callback",
        "sfn-threads-map",
        "sfn-threads-parallel",
        "sfn-threads-test-state",
    )
    from moto.stepfunctions.parser import utils

    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(without(name))
        keepers = _keepers()
        # every module still names moto's one list ...
        assert all(m.TMP_THREADS is utils.TMP_THREADS for m in keepers.values())
        before = len(utils.TMP_THREADS)
        for _ in range(5):
            finish(embedded, arn)
        # ... which keeps the program's, the worker's and the Task's thread of each execution
        assert len(utils.TMP_THREADS) - before >= 15


# --- sfn-json-clone-* (speed) -----------------------------------------------------------------
NESTED_DATA = {
    "StartAt": "Plan",
    "States": {
        "Plan": {
            "Type": "Pass",
            "Parameters": {"columns.$": "$.columns", "source": {"bucket": "b", "key.$": "$.key"}},
            "ResultPath": "$.plan",
            "Next": "Count",
        },
        "Count": {
            "Type": "Pass",
            "Parameters": {"n.$": "States.ArrayLength($.plan.columns)", "first.$": "$.columns[0]"},
            "ResultPath": "$.count",
            "End": True,
        },
    },
}


@contextmanager
def _count_container_deepcopies() -> Iterator[list[int]]:
    """``copy.deepcopy`` calls on a dict or list (state data), wherever they come from."""
    import copy

    real = copy.deepcopy
    calls = [0]

    def counting(value: Any, *args: Any, **kwargs: Any) -> Any:
        if type(value) in (dict, list):
            calls[0] += 1
        return real(value, *args, **kwargs)

    copy.deepcopy = counting
    try:
        yield calls
    finally:
        copy.deepcopy = real


def _run_nested(embedded: EmbeddedAws, name: str) -> dict[str, Any]:
    arn = machine(embedded, name, NESTED_DATA)
    columns = [{"name": f"c{i}", "type": "int64", "nullable": i % 2 == 0} for i in range(3)]
    described = finish(embedded, arn, input=json.dumps({"columns": columns, "key": "k.csv"}))
    assert described["status"] == "SUCCEEDED", described
    output: dict[str, Any] = json.loads(described["output"])
    return output


def test_state_data_is_copied_as_json_with_the_same_results(embedded: EmbeddedAws) -> None:
    # GIVEN nested state data passed through Parameters, paths and intrinsics
    with _count_container_deepcopies() as deepcopies:
        output = _run_nested(embedded, "probe-json-clone")
    # THEN the interpreter copied none of it with copy.deepcopy, and computed the same values
    assert deepcopies[0] == 0
    columns = [{"name": f"c{i}", "type": "int64", "nullable": i % 2 == 0} for i in range(3)]
    assert output == {
        "columns": columns,
        "key": "k.csv",
        "plan": {"columns": columns, "source": {"bucket": "b", "key": "k.csv"}},
        "count": {"n": 3, "first": columns[0]},
    }


def test_a_json_clone_is_deep_and_leaves_other_values_to_deepcopy() -> None:
    from datetime import UTC, datetime

    from chute.local.moto_patches.stepfunctions import json_clone

    when = datetime(2026, 12, 7, tzinfo=UTC)
    original = {"a": [1, {"b": "x"}], "n": None, "t": (1, [2]), "when": when}
    clone = json_clone(original)
    assert clone == original
    clone["a"][1]["b"] = "changed"
    clone["t"][1].append(3)
    assert original["a"][1]["b"] == "x"  # nested dicts and lists are new
    assert original["t"] == (1, [2])  # a tuple is deep-copied too (by copy.deepcopy)


@pytest.mark.canary
def test_canary_the_interpreter_still_copies_state_data_with_deepcopy(
    embedded: EmbeddedAws,
) -> None:
    with contextlib.ExitStack() as reverted:
        for name in (
            "sfn-json-clone-states",
            "sfn-json-clone-string",
            "sfn-json-clone-result-path",
            "sfn-json-clone-execute-state",
            "sfn-json-clone-environment",
            "sfn-json-clone-events",
            "sfn-json-clone-task-parameters",
        ):
            reverted.enter_context(without(name))
        with _count_container_deepcopies() as deepcopies:
            _run_nested(embedded, "probe-json-clone-canary")
    assert deepcopies[0] > 0
