"""The workflow's test cases, pure: a MockConfigFile in Step Functions Local's format, the
expected outcome of each case, and how an execution's history is judged against it.

A MockConfigFile (``workflows/tests/MockConfigFile.json``) maps ``StateMachines.<machine>.
TestCases.<case>.<state>`` to the name of an entry of ``MockedResponses``; each entry maps
attempts (``"0"``, ``"1-2"``: the state's first try and its retries) to a ``Return`` (the
service's answer) or a ``Throw`` (``Error``, ``Cause``). An execution started on
``<stateMachineArn>#<case>`` runs with those answers instead of calling the services.

The format has no place for what a case is expected to do, so each file has a sibling
``expectations.json``: per case the final status, the error and the states entered, in order.

Three runners use this module (``chute.ops.workflow_tests`` holds their AWS calls): the embedded
engine and Step Functions Local run whole executions (:func:`observe`, :func:`judge`); the
TestState API runs one state at a time (:func:`state_cases`, :func:`test_state_request`,
:func:`judge_test_state`), with expectations derived from the same state paths.

Nothing here calls AWS or reads anything but the files it is given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tasks.workflow_definition import Definition

EXPECTATIONS_FILE = "expectations.json"
"""The expectations' file name, next to the MockConfigFile."""

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
_ANSWERS = ("Return", "Throw")
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


class MockConfigError(ValueError):
    """A MockConfigFile or an expectations file that can't be used; the message says where."""


# --- the MockConfigFile ---------------------------------------------------------------------
@dataclass(frozen=True)
class MockedResponse:
    """One attempt's answer: ``Return`` (payload) or ``Throw`` (error, cause)."""

    kind: Literal["Return", "Throw"]
    payload: Any = None
    error: str = ""
    cause: str = ""


@dataclass(frozen=True)
class MockConfig:
    """A parsed MockConfigFile. ``raw`` is the file's JSON, unchanged."""

    raw: Mapping[str, Any]
    test_cases: Mapping[str, Mapping[str, Mapping[str, str]]]
    """state machine -> case -> state -> mocked response name"""
    responses: Mapping[str, tuple[tuple[int, int, MockedResponse], ...]]
    """mocked response name -> (first attempt, last attempt, answer), consecutive from 0"""

    def cases(self, machine: str) -> Mapping[str, Mapping[str, str]]:
        try:
            return self.test_cases[machine]
        except KeyError:
            known = ", ".join(sorted(self.test_cases)) or "none"
            raise MockConfigError(
                f"the MockConfigFile has no state machine {machine!r} (it has: {known})"
            ) from None

    def attempts(self, response: str) -> list[MockedResponse]:
        """The answers of attempt 0, 1, ... of a mocked response."""
        return [
            answer
            for first, last, answer in self.responses[response]
            for _ in range(first, last + 1)
        ]

    def mocked_attempts(self, machine: str, case: str) -> dict[str, int]:
        """state -> how many attempts the case mocks (the attempts the workflow must make)."""
        return {
            state: len(self.attempts(name)) for state, name in self.cases(machine)[case].items()
        }


def parse_mock_config(data: Any, origin: str = "MockConfigFile") -> MockConfig:
    """Check ``data`` against Step Functions Local's format; every problem names its place."""
    if not isinstance(data, dict):
        raise MockConfigError(f"{origin}: the top level must be an object")
    unknown = set(data) - {"StateMachines", "MockedResponses"}
    if unknown:
        raise MockConfigError(
            f"{origin}: unknown top-level field(s) {sorted(unknown)}; "
            "expected StateMachines and MockedResponses"
        )
    responses = _parse_responses(data.get("MockedResponses"), origin)
    machines = data.get("StateMachines")
    if not isinstance(machines, dict) or not machines:
        raise MockConfigError(f"{origin}: StateMachines must be a non-empty object")
    test_cases: dict[str, dict[str, dict[str, str]]] = {}
    for machine, body in machines.items():
        where = f"{origin}: StateMachines.{machine}"
        if not isinstance(body, dict) or not isinstance(body.get("TestCases"), dict):
            raise MockConfigError(f"{where}: needs a TestCases object")
        test_cases[machine] = {}
        for case, states in body["TestCases"].items():
            if not isinstance(states, dict):
                raise MockConfigError(
                    f"{where}.TestCases.{case}: must map state names to mocked responses"
                )
            for state, name in states.items():
                if not isinstance(name, str) or name not in responses:
                    raise MockConfigError(
                        f"{where}.TestCases.{case}.{state}: {name!r} is not in MockedResponses"
                    )
            test_cases[machine][case] = dict(states)
    return MockConfig(raw=data, test_cases=test_cases, responses=responses)


def _parse_responses(
    data: Any, origin: str
) -> dict[str, tuple[tuple[int, int, MockedResponse], ...]]:
    if not isinstance(data, dict):
        raise MockConfigError(f"{origin}: MockedResponses must be an object")
    parsed: dict[str, tuple[tuple[int, int, MockedResponse], ...]] = {}
    for name, attempts in data.items():
        where = f"{origin}: MockedResponses.{name}"
        if not isinstance(attempts, dict) or not attempts:
            raise MockConfigError(f'{where}: must map attempts ("0", "1-2") to answers')
        ranges = []
        for key, answer in attempts.items():
            match = _RANGE.match(str(key))
            if not match:
                raise MockConfigError(f'{where}: attempt key {key!r} is not "N" or "N-M"')
            first = int(match.group(1))
            last = int(match.group(2)) if match.group(2) is not None else first
            if last < first:
                raise MockConfigError(f"{where}: attempt range {key!r} ends before it starts")
            ranges.append((first, last, _parse_answer(answer, f"{where}.{key}")))
        ranges.sort(key=lambda r: r[0])
        expected = 0
        for first, last, _ in ranges:
            if first != expected:
                raise MockConfigError(
                    f"{where}: attempts must be consecutive from 0;"
                    f" expected {expected}, got {first}"
                )
            expected = last + 1
        parsed[name] = tuple(ranges)
    return parsed


def _parse_answer(answer: Any, where: str) -> MockedResponse:
    if (
        not isinstance(answer, dict)
        or len(answer) != 1
        or next(iter(answer)) not in ("Return", "Throw")
    ):
        raise MockConfigError(
            f'{where}: must be exactly one of {{"Return": ...}} or {{"Throw": ...}}'
        )
    if "Return" in answer:
        return MockedResponse("Return", payload=answer["Return"])
    throw = answer["Throw"]
    if not isinstance(throw, dict) or not isinstance(throw.get("Error"), str) or not throw["Error"]:
        raise MockConfigError(f"{where}.Throw: needs an Error (a non-empty string)")
    cause = throw.get("Cause", "")
    if not isinstance(cause, str):
        raise MockConfigError(f"{where}.Throw.Cause: must be a string")
    return MockedResponse("Throw", error=throw["Error"], cause=cause)


def load_mock_config(path: Path) -> MockConfig:
    return parse_mock_config(_read_json(path, "MockConfigFile"), origin=str(path))


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MockConfigError(f"{what} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MockConfigError(f"{what} {path}: can't be read ({exc})") from exc
    except ValueError as exc:
        raise MockConfigError(f"{what} {path}: not valid JSON ({exc})") from exc


# --- expectations ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Expectation:
    status: str
    path: tuple[str, ...]
    error: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Expectations:
    state_machine: str
    input: Mapping[str, Any]
    """the execution input every case starts with"""
    cases: Mapping[str, Expectation]
    state_input: Mapping[str, Any] = field(default_factory=dict)
    """TestState: the input of any single state (holds every field a state's paths read)"""
    state_context: Mapping[str, Any] = field(default_factory=dict)
    """TestState: the context object ($$) a state sees"""
    objects: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    """(bucket, key) -> JSON document: S3 objects the cases read though no Task does (a
    Distributed Map's ItemReader is not a Task: a MockConfigFile can't mock it), put there
    before the cases start"""


def expectations_path(mock_config: Path) -> Path:
    return mock_config.with_name(EXPECTATIONS_FILE)


def parse_expectations(data: Any, origin: str = EXPECTATIONS_FILE) -> Expectations:
    if not isinstance(data, dict):
        raise MockConfigError(f"{origin}: the top level must be an object")
    machine = data.get("stateMachine")
    if not isinstance(machine, str) or not machine:
        raise MockConfigError(
            f"{origin}: stateMachine must name the MockConfigFile's state machine"
        )
    raw_cases = data.get("cases")
    if not isinstance(raw_cases, dict) or not raw_cases:
        raise MockConfigError(f"{origin}: cases must be a non-empty object")
    cases = {}
    for name, body in raw_cases.items():
        where = f"{origin}: cases.{name}"
        if not isinstance(body, dict):
            raise MockConfigError(f"{where}: must be an object")
        status = body.get("status")
        if status not in TERMINAL:
            raise MockConfigError(f"{where}.status: one of {sorted(TERMINAL)}, not {status!r}")
        path = body.get("path")
        if not isinstance(path, list) or not path or not all(isinstance(s, str) for s in path):
            raise MockConfigError(f"{where}.path: the states entered, in order (a list of names)")
        error = body.get("error")
        if error is not None and not isinstance(error, str):
            raise MockConfigError(f"{where}.error: a string")
        if status == "FAILED" and not error:
            raise MockConfigError(f"{where}: a FAILED case names its error")
        cases[name] = Expectation(status, tuple(path), error, str(body.get("description", "")))
    for key in ("input", "stateInput", "stateContext", "objects"):
        if not isinstance(data.get(key, {}), dict):
            raise MockConfigError(f"{origin}: {key} must be an object")
    return Expectations(
        state_machine=machine,
        input=data.get("input", {}),
        cases=cases,
        state_input=data.get("stateInput", {}),
        state_context=data.get("stateContext", {}),
        objects=_objects(data.get("objects", {}), origin),
    )


def _objects(data: Mapping[str, Any], origin: str) -> dict[tuple[str, str], Any]:
    """``{"s3://bucket/key": document}`` -> ``{(bucket, key): document}``."""
    objects = {}
    for url, document in data.items():
        bucket, _, key = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or not bucket or not key:
            raise MockConfigError(f"{origin}: objects.{url}: name an object as s3://bucket/key")
        objects[(bucket, key)] = document
    return objects


def load_expectations(path: Path) -> Expectations:
    return parse_expectations(_read_json(path, "expectations file"), origin=str(path))


def check_suite(
    config: MockConfig, expectations: Expectations, definition: Mapping[str, Any]
) -> list[str]:
    """Problems that make the suite meaningless before anything runs: cases without an
    expectation (or the reverse), states the definition lacks, Task states on a case's path
    (a Map's item states too: mocked by name) that the case doesn't mock."""
    problems = []
    reader = Definition(definition)
    states = reader.states
    items = {inner for name in states for inner in reader.item_states(name)}
    cases = config.cases(expectations.state_machine)
    for name in sorted(set(cases) - set(expectations.cases)):
        problems.append(f"case {name}: no expectation in {EXPECTATIONS_FILE}")
    for name in sorted(set(expectations.cases) - set(cases)):
        problems.append(f"case {name}: expected, but not in the MockConfigFile")
    for name in sorted(set(cases) & set(expectations.cases)):
        mocked = cases[name]
        for state in sorted(set(mocked) - set(states) - set(items)):
            problems.append(f"case {name}: mocks {state}, which the workflow doesn't have")
        for state in expectations.cases[name].path:
            if state not in states:
                problems.append(f"case {name}: path names {state}, which the workflow doesn't have")
            elif reader.kind(state) == "Task" and state not in mocked:
                problems.append(f"case {name}: Task state {state} is on the path but not mocked")
            inner = reader.item_states(state)
            unmocked = [i for i in inner if inner[i].get("Type") == "Task" and i not in mocked]
            problems += [f"case {name}: item Task {i} of {state} not mocked" for i in unmocked]
    return problems


# --- judging an execution -------------------------------------------------------------------
@dataclass(frozen=True)
class Observed:
    status: str
    error: str | None
    path: tuple[str, ...]
    attempts: Mapping[str, int]
    """state -> how many times its task was scheduled"""


def observe(description: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> Observed:
    """What an execution did, from DescribeExecution and its whole GetExecutionHistory."""
    path: list[str] = []
    attempts: dict[str, int] = {}
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        if entered and str(event.get("type", "")).endswith("StateEntered"):
            path.append(str(entered["name"]))
        elif event.get("type") == "TaskScheduled" and path:
            attempts[path[-1]] = attempts.get(path[-1], 0) + 1
    return Observed(
        status=str(description["status"]),
        error=description.get("error"),
        path=tuple(path),
        attempts=attempts,
    )


@dataclass(frozen=True)
class CaseResult:
    name: str
    expected: Expectation
    observed: Observed | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def judge(
    name: str, expected: Expectation, observed: Observed, mocked_attempts: Mapping[str, int]
) -> CaseResult:
    problems = []
    if observed.status != expected.status:
        problems.append(f"status {observed.status}, expected {expected.status}")
    if (observed.error or None) != (expected.error or None):
        problems.append(f"error {observed.error}, expected {expected.error}")
    if observed.path != expected.path:
        problems.append(f"path {' > '.join(observed.path)}, expected {' > '.join(expected.path)}")
    for state, count in sorted(mocked_attempts.items()):
        made = observed.attempts.get(state, 0)
        if state in observed.path and made != count:
            problems.append(f"{state}: {made} attempts, the case mocks {count}")
    return CaseResult(name, expected, observed, tuple(problems))


def not_run(name: str, expected: Expectation, why: str) -> CaseResult:
    return CaseResult(name, expected, None, (why,))


# --- one state at a time: TestState ---------------------------------------------------------
TestStateStatus = Literal["SUCCEEDED", "FAILED", "RETRIABLE", "CAUGHT_ERROR"]


@dataclass(frozen=True)
class StateCase:
    """One TestState call: a mocked Task state's attempt, and what it must do."""

    state: str
    response: str
    attempt: int
    answer: MockedResponse
    retrier_retry_count: int
    """retries the matching retrier already made (earlier attempts with the same error)"""
    status: TestStateStatus
    next_state: str | None
    error: str | None
    cases: tuple[str, ...]
    """the whole-execution cases this attempt comes from"""

    @property
    def name(self) -> str:
        return f"{self.state}/{self.response}#{self.attempt}"


def state_cases(config: MockConfig, expectations: Expectations) -> list[StateCase]:
    """Every distinct (state, mocked response, attempt) of the suite with the outcome its
    case's path implies: a Return goes on to the next state on the path; a Throw followed by
    another attempt is RETRIABLE; the last Throw is CAUGHT_ERROR (the path goes on) or FAILED
    (the path ends there, with the case's error)."""
    found: dict[tuple[str, str, int], StateCase] = {}
    conflicts: list[str] = []
    cases = config.cases(expectations.state_machine)
    for case_name in sorted(cases):
        expected = expectations.cases.get(case_name)
        if expected is None:
            continue
        for state, response in cases[case_name].items():
            if state not in expected.path:
                continue
            position = len(expected.path) - 1 - expected.path[::-1].index(state)
            after = expected.path[position + 1] if position + 1 < len(expected.path) else None
            answers = config.attempts(response)
            for attempt, answer in enumerate(answers):
                status: TestStateStatus
                next_state, error = None, None
                if answer.kind == "Return":
                    status, next_state = "SUCCEEDED", after
                elif attempt + 1 < len(answers):
                    status, error = "RETRIABLE", answer.error
                elif after is not None:
                    status, next_state, error = "CAUGHT_ERROR", after, answer.error
                else:
                    status, error = "FAILED", expected.error
                same_error = sum(
                    1 for a in answers[:attempt] if a.kind == "Throw" and a.error == answer.error
                )
                key = (state, response, attempt)
                candidate = StateCase(
                    state,
                    response,
                    attempt,
                    answer,
                    same_error,
                    status,
                    next_state,
                    error,
                    (case_name,),
                )
                known = found.get(key)
                if known is None:
                    found[key] = candidate
                elif (known.status, known.next_state, known.error) != (
                    candidate.status,
                    candidate.next_state,
                    candidate.error,
                ):
                    conflicts.append(
                        f"{candidate.name}: {known.cases[0]} expects {known.status} "
                        f"{known.next_state or known.error}, {case_name} expects "
                        f"{candidate.status} {candidate.next_state or candidate.error}"
                    )
                else:
                    found[key] = StateCase(**{**known.__dict__, "cases": (*known.cases, case_name)})
    if conflicts:
        raise MockConfigError("contradictory expectations: " + "; ".join(conflicts))
    return [found[k] for k in sorted(found)]


def test_state_request(
    case: StateCase,
    *,
    definition: str,
    role_arn: str | None,
    expectations: Expectations,
    inspection_level: str = "DEBUG",
    field_validation: str = "PRESENT",
) -> dict[str, Any]:
    """The TestState request (boto3 keyword arguments) for one state case: the whole
    definition with ``stateName``, the mocked answer, the retry count reached."""
    if case.answer.kind == "Return":
        mock: dict[str, Any] = {
            "result": json.dumps(case.answer.payload, separators=(",", ":")),
            "fieldValidationMode": field_validation,
        }
    else:
        mock = {"errorOutput": {"error": case.answer.error, "cause": case.answer.cause}}
    request: dict[str, Any] = {
        "definition": definition,
        "stateName": case.state,
        "input": json.dumps(expectations.state_input, separators=(",", ":")),
        "inspectionLevel": inspection_level,
        "mock": mock,
    }
    if role_arn:
        request["roleArn"] = role_arn
    if expectations.state_context:
        request["context"] = json.dumps(expectations.state_context, separators=(",", ":"))
    if case.answer.kind == "Throw":
        request["stateConfiguration"] = {"retrierRetryCount": case.retrier_retry_count}
    return request


@dataclass(frozen=True)
class StateResult:
    case: StateCase
    status: str | None
    next_state: str | None
    error: str | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def judge_test_state(case: StateCase, response: Mapping[str, Any]) -> StateResult:
    status = response.get("status")
    next_state = response.get("nextState")
    error = response.get("error")
    problems = []
    if status != case.status:
        problems.append(f"status {status}, expected {case.status}")
    if case.status in ("SUCCEEDED", "CAUGHT_ERROR") and next_state != case.next_state:
        problems.append(f"next state {next_state}, expected {case.next_state}")
    if case.status in ("FAILED", "CAUGHT_ERROR", "RETRIABLE") and error != case.error:
        problems.append(f"error {error}, expected {case.error}")
    if problems and response.get("cause"):
        problems.append(f"cause: {str(response['cause'])[:200]}")
    return StateResult(case, status, next_state, error, tuple(problems))
