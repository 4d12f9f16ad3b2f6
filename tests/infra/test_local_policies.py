"""The policies the embedded runtime enforces (chute/local/iam_policies.json) are exactly what
the synthesized stack gives each function and the Batch job: regenerate them with
``python -m infra.local_policies`` after changing a grant."""

from __future__ import annotations

import json

from infra.local_policies import POLICIES_FILE, extract, render
from tests.support.synth import Synth


def test_the_checked_in_policies_are_the_synthesized_ones(synth: Synth) -> None:
    fresh = render(extract(synth.stack, synth.json))
    assert json.loads(POLICIES_FILE.read_text()) == json.loads(fresh), (
        "chute/local/iam_policies.json is stale: run `.venv/bin/python -m infra.local_policies`"
    )


def test_every_function_the_runtime_runs_and_the_batch_job_have_a_role(synth: Synth) -> None:
    policies = extract(synth.stack, synth.json)
    assert {"validate", "convert", "archive", "quarantine", "trigger", "grant", "batch"} <= set(
        policies
    )
    unresolved = [
        s["Resource"]
        for statements in policies.values()
        for s in statements
        if "unresolved" in json.dumps(s) and not str(s["Action"]).count("logs:")
    ]
    assert unresolved == []  # only the functions' own log groups (never called) stay unresolved
