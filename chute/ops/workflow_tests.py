"""Running the workflow's test cases (chute.ops.mock_cases) against a Step Functions API.

The same runner serves three targets:

- the embedded engine (:func:`chute.local.workflow_target.embedded_target`: a private
  runtime with the MockConfigFile loaded, no Docker; what ``make test`` and
  ``chute test-workflow`` use);
- Step Functions Local in Docker (:func:`endpoint_target`: any endpoint that reads the same
  MockConfigFile, e.g. ``compose.yaml``'s ``amazon/aws-stepfunctions-local``; ``make
  test-sfn-local``), where the state machine is created from the same ASL and substitutions;
- AWS (:func:`run_test_states`): one state at a time through the TestState API with mocks,
  against the deployed definition (``chute test-workflow --stack``).

Whole executions are started on ``<stateMachineArn>#<case>``, all at once, then followed with
bounded polling; each one's history is judged against its expectation.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chute.ops.mock_cases import (
    TERMINAL,
    CaseResult,
    Expectations,
    MockConfig,
    MockConfigError,
    StateCase,
    StateResult,
    check_suite,
    expectations_path,
    judge,
    judge_test_state,
    load_expectations,
    load_mock_config,
    not_run,
    observe,
    test_state_request,
)
from chute.ops.resources import DEFAULT_REGION, Resources
from tasks.workflow_definition import WORKFLOW_FILE

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MOCK_CONFIG = REPO_ROOT / "workflows" / "tests" / "MockConfigFile.json"
DEFAULT_WORKFLOW = WORKFLOW_FILE
SFN_LOCAL_URL = "http://localhost:8083"
"""Step Functions Local's endpoint as compose.yaml publishes it."""
SFN_LOCAL_ROLE = "arn:aws:iam::123456789012:role/chute-sfn-local"


class TargetError(RuntimeError):
    """The target can't be reached or prepared; the message says what to do."""


@dataclass(frozen=True)
class Suite:
    """A MockConfigFile, its expectations and the workflow (placeholders filled) they test."""

    config: MockConfig
    expectations: Expectations
    definition: str
    mock_config_path: Path

    @classmethod
    def load(
        cls,
        mock_config: Path = DEFAULT_MOCK_CONFIG,
        *,
        expectations: Path | None = None,
        workflow: Path = DEFAULT_WORKFLOW,
        substitutions: dict[str, str] | None = None,
    ) -> Suite:
        config = load_mock_config(mock_config)
        expected = load_expectations(expectations or expectations_path(mock_config))
        try:
            text = workflow.read_text(encoding="utf-8")
        except OSError as exc:
            raise MockConfigError(f"workflow {workflow}: can't be read ({exc})") from exc
        for key, value in (substitutions or default_substitutions()).items():
            text = text.replace("${" + key + "}", value)
        try:
            definition = json.loads(text)
        except ValueError as exc:
            raise MockConfigError(f"workflow {workflow}: not valid JSON ({exc})") from exc
        problems = check_suite(config, expected, definition)
        if problems:
            raise MockConfigError("; ".join(problems))
        return cls(config, expected, text, mock_config)

    @property
    def machine(self) -> str:
        return self.expectations.state_machine

    def select(self, names: list[str] | None) -> list[str]:
        known = list(self.config.cases(self.machine))
        if not names:
            return known
        unknown = [n for n in names if n not in known]
        if unknown:
            raise MockConfigError(f"no test case {', '.join(unknown)}; known: {', '.join(known)}")
        return names


def put_objects(s3: Any, expectations: Expectations) -> None:
    """The S3 objects the cases read without a Task (expectations' ``objects``: a Distributed
    Map's manifest), each bucket created if it isn't there. Only where the suite's runner owns
    S3: the embedded engine (Step Functions Local reads them from its own endpoint)."""
    for (bucket, key), document in expectations.objects.items():
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError:
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode())


def default_substitutions() -> dict[str, str]:
    """The embedded runtime's values for the workflow's placeholders (the same ARNs Step
    Functions Local's default account and region give)."""
    return Resources(prefix="chute", region=DEFAULT_REGION).substitutions()


# --- whole executions -------------------------------------------------------------------------
def run_cases(
    sfn: Any,
    state_machine_arn: str,
    suite: Suite,
    names: list[str] | None = None,
    *,
    timeout: float = 120.0,
    poll: float = 0.05,
    on_result: Callable[[CaseResult], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[CaseResult]:
    """Start every case on ``<state_machine_arn>#<case>``, wait for all (at most ``timeout``
    seconds), judge each from its history. A case that can't start or doesn't finish is a
    failed result saying why, never an exception."""
    token = uuid.uuid4().hex[:8]
    started: dict[str, str] = {}
    results: dict[str, CaseResult] = {}
    selected = suite.select(names)
    for name in selected:
        expected = suite.expectations.cases[name]
        try:
            started[name] = sfn.start_execution(
                stateMachineArn=f"{state_machine_arn}#{name}",
                name=f"{name[:70]}-{token}",
                input=json.dumps(suite.expectations.input),
            )["executionArn"]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            results[name] = not_run(
                name, expected, f"not started: {error.get('Code')}: {error.get('Message')}"
            )
            _report(on_result, results[name])
    deadline = clock() + timeout
    for name, arn in started.items():
        expected = suite.expectations.cases[name]
        description = _wait(sfn, arn, deadline, poll, sleep, clock)
        if description is None:
            results[name] = not_run(name, expected, f"still RUNNING after {timeout:.0f}s")
        else:
            observed = observe(description, _history(sfn, arn))
            mocked = suite.config.mocked_attempts(suite.machine, name)
            results[name] = judge(name, expected, observed, mocked)
        _report(on_result, results[name])
    return [results[name] for name in selected]


def _report(on_result: Callable[[CaseResult], None] | None, result: CaseResult) -> None:
    if on_result is not None:
        on_result(result)


def _wait(
    sfn: Any,
    arn: str,
    deadline: float,
    poll: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> dict[str, Any] | None:
    while True:
        description: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if description["status"] in TERMINAL:
            return description
        if clock() >= deadline:
            return None
        sleep(poll)


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])
    return events


def ensure_state_machine(sfn: Any, name: str, definition: str, role_arn: str) -> str:
    """The ARN of state machine ``name``, created from ``definition`` or updated to it."""
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                arn = str(machine["stateMachineArn"])
                current = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
                if json.loads(current) != json.loads(definition):
                    sfn.update_state_machine(stateMachineArn=arn, definition=definition)
                return arn
    created = sfn.create_state_machine(
        name=name, definition=definition, roleArn=role_arn, type="STANDARD"
    )
    return str(created["stateMachineArn"])


# --- targets ----------------------------------------------------------------------------------
def endpoint_target(suite: Suite, endpoint_url: str = SFN_LOCAL_URL) -> tuple[Any, str]:
    """A Step Functions endpoint that reads the same MockConfigFile itself (Step Functions
    Local with SFN_MOCK_CONFIG): the suite's workflow created there under the MockConfigFile's
    state machine name."""
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="chute",
        aws_secret_access_key="chute",
        config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5),
    )
    try:
        arn = ensure_state_machine(sfn, suite.machine, suite.definition, SFN_LOCAL_ROLE)
    except (BotoCoreError, ClientError) as exc:
        raise TargetError(
            f"no usable Step Functions endpoint at {endpoint_url} ({exc}); "
            "start Step Functions Local with `docker compose up -d` (compose.yaml)"
        ) from exc
    return sfn, arn


# --- one state at a time: TestState on AWS ----------------------------------------------------
def run_test_states(
    sfn: Any,
    cases: list[StateCase],
    *,
    definition: str,
    role_arn: str | None,
    expectations: Expectations,
    on_result: Callable[[StateResult], None] | None = None,
) -> list[StateResult]:
    """Each state case through TestState (mocked, inspectionLevel DEBUG, stateName within the
    whole definition). A refused call is a failed result saying why."""
    results = []
    for case in cases:
        request = test_state_request(
            case, definition=definition, role_arn=role_arn, expectations=expectations
        )
        try:
            response = sfn.test_state(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            result = StateResult(
                case, None, None, None, (f"TestState: {error.get('Code')}: {error.get('Message')}",)
            )
        else:
            result = judge_test_state(case, response)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def deployed_workflow(sfn: Any, state_machine_arn: str) -> tuple[str, str]:
    """The deployed state machine's definition (placeholders filled) and role."""
    description = sfn.describe_state_machine(stateMachineArn=state_machine_arn)
    return str(description["definition"]), str(description["roleArn"])
