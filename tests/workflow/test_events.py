"""Completion events (docs/events.md) from the real state machine on the embedded runtime: a
consumer's rule on the stack's bus (an SQS target, what moto delivers) receives one event per
file outcome, and chute's own reader (`chute watch`, the console) finds the same event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chute.cli.operations import _ChangeLines
from chute.local.embedded import EmbeddedAws
from chute.ops import events as completion_events
from chute.ops.deployment import connect
from chute.web.model import ConsoleData
from tasks import names
from tests.support.pipeline import Pipeline, wait_until

RULE = "test-consumer"
_SEEN: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def consumer(embedded: EmbeddedAws) -> Iterator[str]:
    """A consumer's rule on the bus: every chute event into an SQS queue of its own."""
    sqs = embedded.client("sqs")
    url = sqs.create_queue(QueueName="test-events-consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    ev = embedded.client("events")
    bus = embedded.resources.event_bus_name
    ev.put_rule(
        Name=RULE,
        EventBusName=bus,
        EventPattern=json.dumps({"source": [names.EVENT_SOURCE]}),
    )
    ev.put_targets(Rule=RULE, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    yield url
    ev.remove_targets(Rule=RULE, EventBusName=bus, Ids=["q"])
    ev.delete_rule(Name=RULE, EventBusName=bus)


def _events_for(pipeline: Pipeline, url: str, key: str) -> list[dict[str, Any]]:
    while True:
        messages = pipeline.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            break
        for m in messages:
            _SEEN.append(json.loads(m["Body"]))
            pipeline.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return [e for e in _SEEN if e["detail"]["file"]["key"] == key]


def test_a_converted_file_is_announced_on_the_bus(
    pipeline: Pipeline, consumer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a consumer's rule on the stack's bus
    key = "events/orders.csv"
    # WHEN a good file is processed
    pipeline.put(key, b"id,name\n1,Ann\n2,Bob\n")
    ex = pipeline.wait_for(key)
    assert ex.status == "SUCCEEDED", ex.cause
    # THEN exactly one File Converted event reaches the rule's target
    (event,) = wait_until(lambda: _events_for(pipeline, consumer, key), what="the event")
    assert (event["source"], event["detail-type"]) == (names.EVENT_SOURCE, "File Converted")
    detail = event["detail"]
    assert detail["outcome"] == "converted"
    assert detail["schemaVersion"] == "1"
    assert (detail["execution"], detail["correlationId"]) == (ex.arn, ex.name)
    assert detail["file"]["bucket"] == pipeline.r.staging_bucket
    assert detail["file"]["eTag"]
    assert detail["outputs"]["keys"] == {"jsonl": f"{key}.jsonl", "parquet": f"{key}.parquet"}
    assert detail["archive"]["bucket"] == pipeline.r.archive_bucket
    assert detail["convert"]["route"] == "lambda"
    assert ex.arn in event["resources"]  # added by the putEvents integration
    # AND chute's reader (`chute watch`, the console) finds the same event
    d = connect(endpoint_url=pipeline.aws.endpoint_url)
    found = wait_until(
        lambda: completion_events.read_events(d, execution=ex.arn), what="the logged event"
    )
    assert [(e.id, e.detail_type, e.key) for e in found] == [(event["id"], "File Converted", key)]
    # AND the console's execution page has it
    assert [e.id for e in ConsoleData(d).detail(ex.arn).announced] == [event["id"]]
    # AND `chute watch` says it, on the line of the execution
    lines = _ChangeLines()
    lines.print_changes([ex], completion_events.by_execution(found))
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 1)[1] for line in out] == [
        f"{key} SUCCEEDED",
        f"{key} event: File Converted",
    ]


def test_a_quarantined_file_is_announced_with_its_report(pipeline: Pipeline, consumer: str) -> None:
    # GIVEN a file with a ragged row
    key = "events/ragged.csv"
    pipeline.put(key, b"a,b\n1,2\n3,4,5\n")
    ex = pipeline.wait_for(key)
    assert ex.error == "MalformedContent"
    # THEN one File Quarantined event names the error and where the report is
    (event,) = wait_until(lambda: _events_for(pipeline, consumer, key), what="the event")
    assert event["detail-type"] == "File Quarantined"
    detail = event["detail"]
    assert (detail["outcome"], detail["error"]) == ("quarantined", "MalformedContent")
    assert detail["failedState"] == "ConvertInLambda"
    assert detail["quarantine"] == {
        "bucket": pipeline.r.quarantine_bucket,
        "key": key,
        "reportKey": f"{key}.error.json",
    }
