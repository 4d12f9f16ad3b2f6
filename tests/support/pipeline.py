"""Workflow-tier helpers: the pipeline on the embedded runtime, bounded waits."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import pyarrow.parquet as pq

from chute.local.embedded import EmbeddedAws
from chute.ops.executions import ExecutionView, list_arns, view
from tests.support.accounting import execution_key

_RECEIVED: list[dict[str, Any]] = []
LARGE_THRESHOLD = 2048  # bytes: files of at least this size take the Batch route
FANOUT_THRESHOLD = 16 << 20  # uncompressed files without a contract this large fan out
FANOUT_PART_BYTES = 4 << 20


class Pipeline:
    def __init__(self, aws: EmbeddedAws) -> None:
        self.aws = aws
        self.r = aws.resources
        self.s3 = aws.client("s3")
        self.sfn = aws.client("stepfunctions")
        self.sqs = aws.client("sqs")

    def put(self, key: str, body: bytes) -> str:
        self.s3.put_object(Bucket=self.r.staging_bucket, Key=key, Body=body)
        return str(self.s3.head_object(Bucket=self.r.staging_bucket, Key=key)["ETag"].strip('"'))

    def executions_for(self, key: str) -> list[ExecutionView]:
        found = []
        for item in list_arns(self.sfn, self.r.state_machine_arn):
            if execution_key(self.sfn, item["executionArn"]) == key:
                found.append(view(self.sfn, item["executionArn"]))
        return found

    def wait_for(self, key: str, timeout: float = 60) -> ExecutionView:
        """The finished execution of ``key`` (bounded poll)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [e for e in self.executions_for(key) if e.status != "RUNNING"]
            if done:
                return done[0]
            time.sleep(0.2)
        raise AssertionError(f"no finished execution for {key!r} within {timeout}s")

    def parquet(self, bucket: str, key: str) -> list[dict[str, Any]]:
        table = pq.read_table(io.BytesIO(self.read(bucket, key)))
        return list(table.to_pylist())

    def completions(self) -> list[dict[str, Any]]:
        """Every completion message received so far (kept, so tests can look for their own)."""
        url = self.aws.queue_url(COMPLETIONS_QUEUE)
        while True:
            resp = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            messages = resp.get("Messages", [])
            if not messages:
                return _RECEIVED
            for m in messages:
                _RECEIVED.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def completion_for(self, key: str) -> list[dict[str, Any]]:
        return [c for c in self.completions() if c["source"]["key"] == key]

    def history(self, arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for page in self.sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
            events.extend(page["events"])
        return events

    def keys(self, bucket: str) -> list[str]:
        resp = self.s3.list_objects_v2(Bucket=bucket)
        return sorted(o["Key"] for o in resp.get("Contents", []))

    def read(self, bucket: str, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def jsonl(self, bucket: str, key: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.read(bucket, key).decode().splitlines()]


def wait_until(predicate: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


COMPLETIONS_QUEUE = "test-completions"


def _subscribe_completions(aws: EmbeddedAws) -> None:
    """Downstream consumer of completion messages: an SQS queue subscribed to the topic."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=COMPLETIONS_QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    aws.client("sns").subscribe(
        TopicArn=aws.resources.completion_topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
