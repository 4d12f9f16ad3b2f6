"""Retention of older versions and Lambda concurrency, as parameters: a stack synthesized with
every one of them changed from its default, and the checks on their values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from constructs import IConstruct

from infra.components.grants import THROTTLE_BURST
from infra.config import ChuteProps
from tests.support.synth import DEFAULT_CONTEXT, Synth

TUNED = {
    "chute:archive_noncurrent_days": "0",  # keep replaced originals forever
    "chute:staging_noncurrent_days": "3",
    "chute:convert_max_concurrency": "0",  # no limit
    "chute:grant_reserved_concurrency": str(THROTTLE_BURST + 5),
}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return Synth(tmp_path_factory.mktemp("cdk.out.tuned"), context={**DEFAULT_CONTEXT, **TUNED})


def _properties(synth: Synth, construct: IConstruct) -> dict[str, Any]:
    props: dict[str, Any] = synth.json["Resources"][synth.logical_id(construct)]["Properties"]
    return props


def _old_versions_rule(synth: Synth, bucket: IConstruct) -> dict[str, Any]:
    rules = _properties(synth, bucket)["LifecycleConfiguration"]["Rules"]
    (rule,) = [r for r in rules if r["Id"] == "expire-old-versions"]
    return dict(rule)


def test_staging_keeps_superseded_uploads_as_long_as_asked(tuned: Synth) -> None:
    rule = _old_versions_rule(tuned, tuned.stack.storage.staging)
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 3}
    assert rule["ExpiredObjectDeleteMarker"] is True


def test_archive_can_keep_replaced_originals_forever_and_still_drops_lone_markers(
    tuned: Synth,
) -> None:
    rule = _old_versions_rule(tuned, tuned.stack.storage.archive)
    assert "NoncurrentVersionExpiration" not in rule
    assert rule["ExpiredObjectDeleteMarker"] is True


def test_convert_limit_zero_reserves_nothing_and_the_grant_function_can_reserve(
    tuned: Synth,
) -> None:
    functions = tuned.stack.functions
    assert "ReservedConcurrentExecutions" not in _properties(tuned, functions["convert"])
    grant = _properties(tuned, functions["grant"])
    assert grant["ReservedConcurrentExecutions"] == THROTTLE_BURST + 5
    reserving = [
        step
        for step, fn in functions.items()
        if "ReservedConcurrentExecutions" in _properties(tuned, fn)
    ]
    assert reserving == ["grant"]


def test_the_tuned_stack_has_no_unacknowledged_nag_findings(tuned: Synth) -> None:
    report = json.loads((tuned.outdir / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []


# --- parameters ---------------------------------------------------------------------------------
def test_the_parameters_come_from_context() -> None:
    props = ChuteProps.from_context(TUNED.get)
    assert props.archive_noncurrent_days == 0
    assert props.staging_noncurrent_days == 3
    assert props.convert_max_concurrency == 0
    assert props.grant_reserved_concurrency == THROTTLE_BURST + 5


def test_defaults_expire_old_versions_and_cap_conversions_only() -> None:
    defaults = ChuteProps()
    assert defaults.archive_noncurrent_days == 90
    assert defaults.staging_noncurrent_days == 14
    assert defaults.convert_max_concurrency == 20
    assert defaults.grant_reserved_concurrency == 0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"archive_noncurrent_days": -1}, "archive_noncurrent_days=-1: 0 \\(keep\\) or more"),
        ({"staging_noncurrent_days": 0}, "staging_noncurrent_days=0: 1 day or more"),
        ({"convert_max_concurrency": -5}, "convert_max_concurrency=-5: 0 \\(none\\) or more"),
        ({"grant_reserved_concurrency": 2}, f"at least {THROTTLE_BURST}"),
    ],
)
def test_bad_values_are_refused_with_the_parameter_named(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ChuteProps(**values)
