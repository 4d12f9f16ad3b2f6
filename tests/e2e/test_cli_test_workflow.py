"""`chute test-workflow` as a person runs it: the MockConfigFile's cases on a private embedded
engine, and a changed workflow that breaks a path caught by them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHUTE = [sys.executable, "-m", "chute.cli", "test-workflow"]


def chute(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CHUTE, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_chosen_cases_pass_and_are_reported(tmp_path: Path) -> None:
    result = chute(
        "--case", "LambdaRouteSucceeds", "--case", "BatchExit65Rejected", "--json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr + result.stdout
    rows = {row["case"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"LambdaRouteSucceeds", "BatchExit65Rejected"}
    assert rows["BatchExit65Rejected"]["observed"]["path"][-1] == "Rejected"
    assert all(row["ok"] for row in rows.values())


def test_a_changed_workflow_that_breaks_a_path_fails(tmp_path: Path) -> None:
    # GIVEN a workflow where a rejected file skips quarantine
    definition = json.loads((REPO / "workflows" / "pipeline.asl.json").read_text())
    definition["States"]["ValidateRejected"]["Next"] = "Stale"
    changed = tmp_path / "changed.asl.json"
    changed.write_text(json.dumps(definition))
    # WHEN its cases run
    result = chute(
        "--workflow", str(changed), "--case", "ValidateRejectsInvalidFile", "--json", cwd=tmp_path
    )
    # THEN the case fails, showing where the path went
    assert result.returncode == 1, result.stderr + result.stdout
    (row,) = json.loads(result.stdout)
    assert not row["ok"]
    assert row["observed"]["path"][-2:] == ["ValidateRejected", "Stale"]
    assert row["problems"] == [
        "path LoadConfig > Validate > ValidateRejected > Stale, expected LoadConfig > Validate"
        " > ValidateRejected > Quarantine > SummarizeRejection > NotifyRejected"
        " > AnnounceQuarantined > Rejected"
    ]
