"""The auto-redrive reads real executions of the workflow on the embedded engine: which ones
failed, in which Fail state, and which of them it would redrive. (RedriveExecution itself is
not in moto; its request is checked with a Stubber in tests/unit/test_redrive.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chute.local.embedded import EmbeddedAws
from tasks.adapters.sfn import FailedExecutions
from tasks.redrive.domain import is_transient
from tests.support.pipeline import Pipeline


def test_real_failures_are_classified_from_their_histories(
    pipeline: Pipeline, embedded: EmbeddedAws
) -> None:
    # GIVEN one file failing transiently (retries exhausted), one quarantined, one Batch bug
    embedded.inject_fault("convert", "StorageUnavailable", times=5)
    pipeline.put("redrive/transient.csv", b"id\n1\n")
    transient = pipeline.wait_for("redrive/transient.csv")
    pipeline.put("redrive/ragged.csv", b"a,b\n1,2,3\n")
    quarantined = pipeline.wait_for("redrive/ragged.csv")
    embedded.inject_batch_exit(70)
    pipeline.put("redrive/crash.csv", b"a,b\n" + b"1,2\n" * 1000)
    crashed = pipeline.wait_for("redrive/crash.csv")
    # WHEN the auto-redrive reads the failures of the last hours
    port = FailedExecutions(embedded.resources.state_machine_arn, embedded.client("stepfunctions"))
    found = {
        f.name: f
        for f in port.failed_since(datetime.now(UTC) - timedelta(hours=1))
        if f.name in {transient.name, quarantined.name, crashed.name}
    }
    # THEN it sees each one's Fail state and redrives only the transient one
    assert (found[transient.name].fail_state, found[transient.name].error) == (
        None,
        "StorageUnavailable",
    )
    assert found[quarantined.name].fail_state == "Rejected"
    assert found[crashed.name].fail_state == "BatchFailed"
    assert {name for name, f in found.items() if is_transient(f)} == {transient.name}
    assert not port.rerun_exists(found[transient.name])
