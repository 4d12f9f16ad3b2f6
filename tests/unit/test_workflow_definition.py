"""The workflow file's contract with the code: error names, placeholders, structure."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chute.local.embedded import EmbeddedAws, LocalSettings
from tasks import errors, names
from tasks.workflow_definition import WORKFLOW_FILE, Definition

WORKFLOW = Definition.load()
DEFINITION: dict[str, Any] = dict(WORKFLOW.document)
STATES: dict[str, Any] = DEFINITION["States"]
# Names that AWS (not chute) reports.
AWS_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
    "Sandbox.Timedout",
    "Runtime.ExitError",
    "Batch.AWSBatchException",
    "Batch.ServerException",
    "Batch.TooManyRequestsException",
    "States.TaskFailed",
    "States.ALL",
    "States.Permissions",
    "Batch.ClientException",
    "Runtime.OutOfMemory",
    "Lambda.Unknown",
}


def _error_names() -> set[str]:
    return WORKFLOW.error_names()


def test_every_error_class_is_named_in_the_workflow() -> None:
    classes = {cls.__name__ for cls in errors.concrete_errors()}
    assert classes <= _error_names(), classes - _error_names()


def test_every_custom_error_name_in_the_workflow_is_an_error_class() -> None:
    classes = {cls.__name__ for cls in errors.concrete_errors()}
    assert _error_names() - AWS_ERRORS == classes


def test_permanent_errors_are_never_retried_and_transient_ones_are() -> None:
    permanent = {c.__name__ for c in errors.PermanentError.__subclasses__()}
    transient = {c.__name__ for c in errors.TransientError.__subclasses__()}
    for name, state in STATES.items():
        retried = {e for rule in state.get("Retry", []) for e in rule["ErrorEquals"]}
        assert not retried & permanent, name
        if state.get("Resource") == "arn:aws:states:::lambda:invoke":
            assert transient <= retried, name
            assert "Sandbox.Timedout" in retried, name


def test_retries_back_off_with_jitter_and_a_cap() -> None:
    for name, state in STATES.items():
        for rule in state.get("Retry", []):
            assert rule["BackoffRate"] > 1, name
            assert rule["JitterStrategy"] == "FULL", name
            assert "MaxDelaySeconds" in rule, name
            assert "States.ALL" not in rule["ErrorEquals"], name


def test_every_transition_targets_an_existing_state() -> None:
    targets = {DEFINITION["StartAt"]}
    for state in STATES.values():
        targets.update(t for t in [state.get("Next"), state.get("Default")] if t)
        targets.update(c["Next"] for c in state.get("Choices", []))
        targets.update(c["Next"] for c in state.get("Catch", []))
    assert targets <= set(STATES), targets - set(STATES)
    assert set(STATES) - targets == set(), "unreachable states"


def test_work_states_catch_permanent_errors_into_quarantine() -> None:
    permanent = {c.__name__ for c in errors.PermanentError.__subclasses__()}
    for name in ("Validate", "ConvertInLambda"):
        (rule,) = [c for c in STATES[name]["Catch"] if set(c["ErrorEquals"]) == permanent]
        assert STATES[rule["Next"]]["Next"] == "Quarantine"
    assert STATES["Quarantine"]["Next"] == "SummarizeRejection"
    assert STATES["NotifyRejected"]["Next"] == "AnnounceQuarantined"
    assert STATES["AnnounceQuarantined"]["Next"] == "Rejected"
    assert STATES["Rejected"]["ErrorPath"] == "$.error.Error"


def test_placeholders_match_the_names_module_and_the_embedded_runtime() -> None:
    in_file = set(re.findall(r"\$\{(\w+)\}", WORKFLOW_FILE.read_text()))
    assert in_file == set(names.PLACEHOLDERS)
    runtime = EmbeddedAws(LocalSettings(state_dir=Path("/nonexistent")))
    assert set(runtime.substitutions()) == in_file


def test_batch_state_has_a_timeout_and_passes_pointers_only() -> None:
    batch = STATES["ConvertInBatch"]
    assert batch["Resource"] == "arn:aws:states:::batch:submitJob.sync"
    assert "TimeoutSecondsPath" in batch or "TimeoutSeconds" in batch
    env = {e["Name"] for e in batch["Parameters"]["ContainerOverrides"]["Environment"]}
    assert env == {names.ENV_JOB_FILE, names.ENV_JOB_TARGET, names.ENV_JOB_EXECUTION}


@pytest.mark.parametrize("threshold", [1, 100_000])
def test_substituted_definition_is_valid_json(threshold: int) -> None:
    from chute.local.local_stack import load_definition

    runtime = EmbeddedAws(
        LocalSettings(state_dir=Path("/nonexistent"), large_file_threshold_bytes=threshold)
    )
    text = load_definition(runtime.substitutions())
    assert "${" not in text
    config = json.loads(text)["States"]["LoadConfig"]["Parameters"]
    assert config["largeFileThresholdBytes.$"] == f"States.StringToJson('{threshold}')"
