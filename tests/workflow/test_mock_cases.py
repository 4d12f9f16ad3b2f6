"""Every test case of workflows/tests/MockConfigFile.json (Step Functions Local's format) on the
embedded engine: the real workflow with mocked task answers, each case's final status, error,
states entered and attempts per state compared with workflows/tests/expectations.json."""

from __future__ import annotations

import json

import pytest

from chute.local.embedded import EmbeddedAws
from chute.ops.mock_cases import CaseResult, load_mock_config
from chute.ops.workflow_tests import DEFAULT_MOCK_CONFIG, Suite, put_objects, run_cases

CASES = list(load_mock_config(DEFAULT_MOCK_CONFIG).cases("chute-pipeline"))


@pytest.fixture(scope="module")
def results(embedded: EmbeddedAws) -> dict[str, CaseResult]:
    """All cases at once (they are independent executions); each test reads its own."""
    suite = Suite.load(substitutions=embedded.substitutions())
    put_objects(embedded.client("s3"), suite.expectations)
    sfn = embedded.client("stepfunctions")
    return {r.name: r for r in run_cases(sfn, embedded.resources.state_machine_arn, suite)}


@pytest.mark.parametrize("case", CASES)
def test_case_ends_as_expected(results: dict[str, CaseResult], case: str) -> None:
    # GIVEN the case's mocked answers WHEN its execution runs THEN it ends as expected
    result = results[case]
    assert result.ok, f"{case} ({result.expected.description}): " + "; ".join(result.problems)


def test_a_wrong_expectation_is_reported_not_passed(embedded: EmbeddedAws, tmp_path) -> None:
    # GIVEN an expectations file that expects the happy path to be quarantined
    data = json.loads(DEFAULT_MOCK_CONFIG.with_name("expectations.json").read_text())
    data["cases"]["LambdaRouteSucceeds"] = {
        "status": "FAILED",
        "error": "InvalidFile",
        "path": ["LoadConfig", "Validate", "ValidateRejected"],
    }
    wrong = tmp_path / "expectations.json"
    wrong.write_text(json.dumps(data))
    suite = Suite.load(expectations=wrong, substitutions=embedded.substitutions())
    # WHEN the case runs
    (result,) = run_cases(
        embedded.client("stepfunctions"),
        embedded.resources.state_machine_arn,
        suite,
        ["LambdaRouteSucceeds"],
    )
    # THEN each difference is reported
    assert not result.ok
    assert result.problems[0] == "status SUCCEEDED, expected FAILED"
    assert result.problems[1] == "error None, expected InvalidFile"
    assert result.problems[2].startswith("path LoadConfig > Validate > RouteBySize")
