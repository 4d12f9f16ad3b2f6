"""The auto-redrive on real executions of the workflow on the embedded engine: which ones
failed, in which Fail state, which of them it redrives, and the redrive itself (the embedded
engine's RedriveExecution, chute.local.moto_patches.redrive: the same execution resumes at its
failed state)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from chute.local.embedded import EmbeddedAws
from tasks import names
from tasks.adapters.sfn import FailedExecutions
from tasks.redrive.domain import FailedExecution, is_transient, redrive_failed
from tasks.settings import RedriveSettings
from tasks.workflow import rerun_name
from tests.support.pipeline import Pipeline, wait_until


@dataclass
class Only:
    """The port, limited to some executions (the engine is shared with other tests)."""

    port: FailedExecutions
    names: set[str]

    def failed_since(self, since: datetime) -> Iterator[FailedExecution]:
        return (f for f in self.port.failed_since(since) if f.name in self.names)

    def rerun_exists(self, execution: FailedExecution) -> bool:
        return self.port.rerun_exists(execution)

    def redrive(self, execution: FailedExecution) -> bool:
        return self.port.redrive(execution)

    def restart(self, execution: FailedExecution) -> bool:
        return self.port.restart(execution)


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
    # WHEN the scheduled auto-redrive runs
    settings = RedriveSettings(state_machine_arn=embedded.resources.state_machine_arn)
    report = redrive_failed(Only(port, set(found)), settings, datetime.now(UTC))
    # THEN it redrives the transient one, which resumes and succeeds as the same execution
    assert report.redriven == [transient.name]
    assert report.skipped == {quarantined.name: "not_transient", crashed.name: "not_transient"}
    sfn = embedded.client("stepfunctions")

    def finished() -> dict[str, object] | None:
        desc = sfn.describe_execution(executionArn=transient.arn)
        return None if desc["status"] == "RUNNING" else desc

    desc = wait_until(finished, what="redriven execution finished")
    assert (desc["status"], desc["redriveCount"]) == ("SUCCEEDED", 1)


def test_a_batch_job_that_kept_failing_transiently_is_restarted_and_succeeds(
    pipeline: Pipeline, embedded: EmbeddedAws
) -> None:
    # GIVEN a Batch-route file whose job exited 75 (EX_TEMPFAIL) on every attempt: BatchFailed
    attempts = int(str(names.BATCH_RETRY_STRATEGY["attempts"]))
    embedded.inject_batch_exit(75, times=attempts)
    pipeline.put("redrive/tempfail.csv", b"a,b\n" + b"1,2\n" * 1000)
    failed = pipeline.wait_for("redrive/tempfail.csv")
    port = FailedExecutions(embedded.resources.state_machine_arn, embedded.client("stepfunctions"))
    (found,) = [
        f
        for f in port.failed_since(datetime.now(UTC) - timedelta(hours=1))
        if f.name == failed.name
    ]
    assert (found.fail_state, is_transient(found)) == ("BatchFailed", True)
    # WHEN the scheduled auto-redrive runs, twice
    settings = RedriveSettings(state_machine_arn=embedded.resources.state_machine_arn)
    report = redrive_failed(Only(port, {failed.name}), settings, datetime.now(UTC))
    again = redrive_failed(Only(port, {failed.name}), settings, datetime.now(UTC))
    # THEN it restarted the file once as a new execution (a redrive would re-enter BatchFailed),
    # which ran the job again and succeeded; the failed execution itself was not redriven
    assert (report.restarted, report.redriven) == ([failed.name], [])
    assert again.skipped == {failed.name: "already_rerun"} and again.restarted == []
    sfn = embedded.client("stepfunctions")
    restart_arn = failed.arn.rsplit(":", 1)[0] + ":" + rerun_name(failed.name)

    def finished() -> dict[str, object] | None:
        desc = sfn.describe_execution(executionArn=restart_arn)
        return None if desc["status"] == "RUNNING" else desc

    assert wait_until(finished, what="restarted execution finished")["status"] == "SUCCEEDED"
    original = sfn.describe_execution(executionArn=failed.arn)
    assert (original["status"], original.get("redriveCount", 0)) == ("FAILED", 0)
