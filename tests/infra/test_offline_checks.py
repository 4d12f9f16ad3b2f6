"""The strongest offline checks the ecosystem has: cdk-nag, cfn-lint, and an external ASL
validator (npm asl-validator), run on what `make synth` produces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chute.local.embedded import EmbeddedAws, LocalSettings
from chute.local.local_stack import WORKFLOW_FILE, load_definition
from tests.support.synth import Synth

REPO = Path(__file__).resolve().parents[2]
ASL_VALIDATOR = REPO / "node_modules" / ".bin" / "asl-validator"
# cfn-lint warnings accepted for CDK-generated templates, with the reason.
ACCEPTED_WARNINGS = {
    "W3005": "aws-cdk-lib adds DependsOn next to a GetAtt for roles and notification queues",
}


def test_cdk_nag_has_no_unacknowledged_findings_and_every_acknowledgment_has_a_reason(
    synth: Synth,
) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    assert nag["suppressedViolations"], "the AwsSolutions checks ran"
    for finding in nag["suppressedViolations"]:
        paths = [c["constructPath"] for c in finding["violatingConstructs"]]
        assert paths, finding["ruleName"]
        assert len(finding.get("reason", "")) > 40, finding["ruleName"]


def test_cfn_lint_finds_no_errors(synth: Synth) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--format",
            "json",
            str(synth.template_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    findings = json.loads(result.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert errors == [], errors
    unexpected = [f for f in findings if f["Rule"]["Id"] not in ACCEPTED_WARNINGS]
    assert unexpected == [], unexpected


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    if not ASL_VALIDATOR.exists():
        pytest.fail("node_modules/.bin/asl-validator missing: run `make install` (npm ci)")
    return subprocess.run(
        [str(ASL_VALIDATOR), "--json-path", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_asl_validator_accepts_the_workflow_file() -> None:
    result = _validate(WORKFLOW_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_asl_validator_accepts_the_substituted_definition(tmp_path: Path) -> None:
    embedded = EmbeddedAws(LocalSettings(state_dir=tmp_path))
    path = tmp_path / "substituted.asl.json"
    path.write_text(load_definition(embedded.substitutions()))
    result = _validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_asl_validator_catches_a_dangling_next(tmp_path: Path) -> None:
    # The control: the validator really checks transitions (cfn-lint misses this).
    definition = json.loads(WORKFLOW_FILE.read_text())
    definition["States"]["Archive"]["Next"] = "NoSuchState"
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(definition))
    result = _validate(path)
    assert result.returncode != 0
    assert "NoSuchState" in result.stdout + result.stderr
