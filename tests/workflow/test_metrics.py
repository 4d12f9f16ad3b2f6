"""Custom metrics through the real state machine: one EMF document per archived or quarantined
file, whichever route converted it (the documents are lines in the functions' worker logs)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from chute.local.embedded import EmbeddedAws
from tasks import names
from tests.support.pipeline import LARGE_THRESHOLD, Pipeline, wait_until


def documents(aws: EmbeddedAws, step: str, execution: str) -> list[dict[str, Any]]:
    """The EMF documents ``step``'s function printed for ``execution``."""
    log = aws.log_dir / f"{aws.resources.function_name(step)}.log"
    if not log.exists():
        return []
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if '"_aws"' in line]
    return [d for d in map(json.loads, lines) if d.get("execution") == execution]


def counts(document: dict[str, Any]) -> dict[str, list[float]]:
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == names.METRICS_NAMESPACE
    return {m["Name"]: document[m["Name"]] for m in directive["Metrics"]}


@pytest.mark.parametrize(
    ("key", "body", "route"),
    [
        ("metrics/small.csv", b"id,name\n1,alice\n", "lambda"),
        (
            "metrics/large.csv.gz",
            gzip.compress(b"n\n" + b"".join(b"%d\n" % i for i in range(3000))),
            "batch",
        ),
    ],
)
def test_every_archived_file_is_counted_once_whatever_its_route(
    pipeline: Pipeline, embedded: EmbeddedAws, key: str, body: bytes, route: str
) -> None:
    assert (len(body) >= LARGE_THRESHOLD) == (route == "batch")
    # WHEN a file goes through the pipeline
    pipeline.put(key, body)
    ex = pipeline.wait_for(key)
    assert (ex.status, ex.route) == ("SUCCEEDED", route), ex.cause

    # THEN Archive printed one document for the route: one file, the original's size, and
    # the time since the execution started
    [document] = wait_until(lambda: documents(embedded, "archive", ex.name), what="EMF line")
    measured = counts(document)
    seconds = measured.pop(names.METRIC_PROCESSING_SECONDS)
    assert measured == {
        names.METRIC_FILES_PROCESSED: [1.0],
        names.METRIC_BYTES_PROCESSED: [float(len(body))],
    }
    assert document["route"] == route
    assert seconds[0] > 0


def test_a_quarantined_file_is_counted(pipeline: Pipeline, embedded: EmbeddedAws) -> None:
    # WHEN a ragged CSV is rejected
    key = "metrics/ragged.csv"
    pipeline.put(key, b"a,b\n1,2\n3\n")
    ex = pipeline.wait_for(key)
    assert (ex.status, ex.error) == ("FAILED", "MalformedContent")

    # THEN Quarantine printed one document counting it, and nothing was counted as processed
    [document] = wait_until(lambda: documents(embedded, "quarantine", ex.name), what="EMF line")
    assert counts(document) == {names.METRIC_FILES_QUARANTINED: [1.0]}
    assert document["error"] == "MalformedContent"
    assert documents(embedded, "archive", ex.name) == []
