"""Custom metrics: Archive and Quarantine print one CloudWatch EMF document per invocation."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from tasks import metrics, names
from tasks.archive import handler as archive_handler
from tasks.errors import SourceMissing
from tasks.models import FileSpec
from tasks.quarantine import handler as quarantine_handler
from tests.support.unit import ARCHIVE, QUARANTINE, STAGING, fresh, put

BODY = b"id,name\n1,alice\n2,bob\n"


def stdout_documents(out: str) -> list[dict[str, Any]]:
    """Every JSON line printed (log lines and EMF documents)."""
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def emf(out: str) -> list[dict[str, Any]]:
    """The EMF documents among the printed lines: those CloudWatch Logs turns into metrics."""
    return [doc for doc in stdout_documents(out) if "_aws" in doc]


def values(document: dict[str, Any]) -> dict[str, list[float]]:
    """Metric name -> its values (EMF allows a number or a list of numbers)."""
    out: dict[str, list[float]] = {}
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            out[metric["Name"]] = value if isinstance(value, list) else [value]
    return out


def assert_chute_directive(
    document: dict[str, Any], units: dict[str, str], extra: dict[str, str] | None = None
) -> None:
    """Namespace, dimensions and units are the ones the dashboard asks for (tasks.names)."""
    [directive] = document["_aws"]["CloudWatchMetrics"]
    dimensions = {**names.METRICS_DIMENSIONS, **(extra or {})}
    assert directive["Namespace"] == names.METRICS_NAMESPACE
    assert sorted(directive["Dimensions"][0]) == sorted(dimensions)
    for dimension, value in dimensions.items():
        assert document[dimension] == value
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == units


@pytest.fixture
def env(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CHUTE_ARCHIVE_BUCKET", ARCHIVE)
    monkeypatch.setenv("CHUTE_QUARANTINE_BUCKET", QUARANTINE)
    with fresh():
        yield


def archive_event(s3: Any, key: str = "incoming/orders.csv") -> dict[str, Any]:
    """The Archive step's input after either conversion route (the same for both)."""
    file = FileSpec(ref=put(s3, key, BODY), compression="none")
    return {"file": file.to_dict(), "execution": "orders-csv-0123"}


def quarantine_event(s3: Any, key: str = "incoming/broken.csv") -> dict[str, Any]:
    return {
        "source": put(s3, key, BODY).to_dict(),
        "error": {"Error": "MalformedContent", "Cause": "row 3 has 3 fields, expected 2"},
        "failedState": "ConvertInLambda",
        "execution": "broken-csv-4567",
    }


# --- Archive: FilesProcessed + BytesProcessed ----------------------------------------------------
def test_archive_emits_files_and_bytes_processed(
    s3: Any, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a converted file in staging
    event = archive_event(s3)

    # WHEN the Archive handler runs
    result = archive_handler.handler(event, None)

    # THEN exactly one EMF document: one file, its size in bytes, correlated by execution
    [document] = emf(capsys.readouterr().out)
    assert_chute_directive(
        document,
        {names.METRIC_FILES_PROCESSED: "Count", names.METRIC_BYTES_PROCESSED: "Bytes"},
    )
    assert values(document) == {
        names.METRIC_FILES_PROCESSED: [1],
        names.METRIC_BYTES_PROCESSED: [len(BODY)],
    }
    assert document["execution"] == "orders-csv-0123"
    assert result["size"] == len(BODY)


def test_archive_after_a_route_adds_the_route_and_the_processing_time(
    s3: Any, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the Archive input as the workflow sends it after the Batch route
    event = {**archive_event(s3), "route": "batch", "started": "2020-01-01T00:00:00.000Z"}

    # WHEN the Archive handler runs
    archive_handler.handler(event, None)

    # THEN the metrics carry the route, and the time since the execution started
    [document] = emf(capsys.readouterr().out)
    assert_chute_directive(
        document,
        {
            names.METRIC_FILES_PROCESSED: "Count",
            names.METRIC_BYTES_PROCESSED: "Bytes",
            names.METRIC_PROCESSING_SECONDS: "Seconds",
        },
        {"route": "batch"},
    )
    assert values(document)[names.METRIC_PROCESSING_SECONDS][0] > 365 * 86400


def test_each_invocation_prints_its_own_document(
    s3: Any, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN two files archived one after the other by the same warm function
    archive_handler.handler(archive_event(s3, "incoming/a.csv"), None)
    archive_handler.handler(archive_event(s3, "incoming/b.csv"), None)

    # THEN two documents of one file each (nothing carried over)
    documents = emf(capsys.readouterr().out)
    assert [values(d)[names.METRIC_FILES_PROCESSED] for d in documents] == [[1], [1]]


def test_archive_run_again_counts_nothing(
    s3: Any, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a file archived, and the step retried after its response was lost
    event = archive_event(s3)
    archive_handler.handler(event, None)
    capsys.readouterr()

    # WHEN the handler runs again  THEN no metric: the first attempt counted the file
    archive_handler.handler(event, None)
    assert emf(capsys.readouterr().out) == []


def test_failed_archive_counts_nothing_and_keeps_its_error(
    s3: Any, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the original gone from staging and never archived
    event = archive_event(s3)
    s3.delete_object(Bucket=STAGING, Key="incoming/orders.csv")

    # WHEN the handler runs  THEN its error is the step's error (the contract) and nothing counted
    with pytest.raises(SourceMissing):
        archive_handler.handler(event, None)
    assert emf(capsys.readouterr().out) == []


# --- Quarantine: FilesQuarantined ----------------------------------------------------------------
def test_quarantine_emits_files_quarantined(
    s3: Any, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a rejected file in staging
    event = quarantine_event(s3)

    # WHEN the Quarantine handler runs
    quarantine_handler.handler(event, None)

    # THEN exactly one EMF document counting one quarantined file
    [document] = emf(capsys.readouterr().out)
    assert_chute_directive(
        document, {names.METRIC_FILES_QUARANTINED: "Count"}, {"error": "MalformedContent"}
    )
    assert values(document) == {names.METRIC_FILES_QUARANTINED: [1]}
    assert document["execution"] == "broken-csv-4567"


def test_quarantine_of_a_vanished_file_counts_nothing(
    s3: Any, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the rejected file is gone from staging (nothing to quarantine)
    event = quarantine_event(s3)
    s3.delete_object(Bucket=STAGING, Key="incoming/broken.csv")

    # WHEN the handler runs  THEN the report is written, but no file was quarantined
    result = quarantine_handler.handler(event, None)
    assert s3.head_object(Bucket=QUARANTINE, Key=result["reportKey"])
    assert emf(capsys.readouterr().out) == []


def test_quarantine_run_again_counts_nothing(
    s3: Any, env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    event = quarantine_event(s3)
    quarantine_handler.handler(event, None)
    capsys.readouterr()

    quarantine_handler.handler(event, None)
    assert emf(capsys.readouterr().out) == []


# --- the module itself ---------------------------------------------------------------------------
def test_flush_with_nothing_recorded_prints_and_warns_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Powertools warns when flushing an empty set
        metrics.get_metrics().add_metadata(key="execution", value="x")
        metrics.get_metrics().flush_metrics()
    assert capsys.readouterr().out == ""


def test_a_failed_flush_never_fails_the_step(
    s3: Any, env: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN printing the EMF document fails
    def broken(self: AmazonCloudWatchEMFProvider, raise_on_empty_metrics: bool = False) -> None:
        raise ValueError("schema")

    with monkeypatch.context() as patch:
        patch.setattr(AmazonCloudWatchEMFProvider, "flush_metrics", broken)

        # WHEN the Archive handler runs  THEN it still returns the archived file
        assert archive_handler.handler(archive_event(s3), None)["bucket"] == ARCHIVE

    # AND the loss is logged, and nothing is left to leak into the next invocation
    lines = stdout_documents(capsys.readouterr().out)
    [warning] = [line for line in lines if line.get("message") == "metrics not flushed"]
    assert (warning["error"], warning["reason"]) == ("ValueError", "schema")
    metrics.get_metrics().flush_metrics()
    assert emf(capsys.readouterr().out) == []


def test_powertools_environment_cannot_move_the_metrics(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN Powertools' own variables set (e.g. for the logger) when the metrics are first built
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "elsewhere")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "other")
    monkeypatch.setattr(metrics, "_metrics", None)

    # WHEN a file is counted  THEN namespace and dimensions are still the dashboard's
    metrics.Recorder().file_quarantined()
    metrics.get_metrics().flush_metrics()
    [document] = emf(capsys.readouterr().out)
    assert_chute_directive(document, {names.METRIC_FILES_QUARANTINED: "Count"})


def test_metric_names_are_distinct() -> None:
    metric_names = {
        names.METRIC_FILES_PROCESSED,
        names.METRIC_BYTES_PROCESSED,
        names.METRIC_FILES_QUARANTINED,
    }
    assert len(metric_names) == 3
