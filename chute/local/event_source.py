"""Deliver SQS messages to a function the way Lambda's SQS event source mapping does:
batches of up to 10, partial batch responses (``ReportBatchItemFailures``), and redelivery after
the visibility timeout, so a message that keeps failing reaches the queue's DLQ via its redrive
policy (``maxReceiveCount``).

Local only: while ``max_running`` executions of the pipeline are running, no more messages are
received, so a backlog waits in the queue (where a message costs nothing) instead of as
thousands of running executions, each a few threads of the one endpoint process (issue 25).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


class SqsEventSource:
    def __init__(
        self,
        *,
        sqs: Any,
        lambda_client: Any,
        queue_url: str,
        queue_arn: str,
        function_name: str,
        region: str,
        batch_size: int = 10,
        wait_seconds: int = 1,
        running: Callable[[], int] | None = None,
        max_running: int = 0,
    ) -> None:
        self._sqs = sqs
        self._lambda = lambda_client
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._function = function_name
        self._region = region
        self._batch_size = batch_size
        self._wait = wait_seconds
        self._running = running
        self._max_running = max_running
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="sqs-event-source")
        self.idle = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def saturated(self) -> bool:
        """Whether ``max_running`` executions are running (0: no limit)."""
        if not self._max_running or self._running is None:
            return False
        try:
            return self._running() >= self._max_running
        except Exception:  # the state machine isn't there (yet, or any more): deliver
            return False

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.saturated():
                self.idle.clear()
                self._stop.wait(0.05)
                continue
            try:
                delivered = self.poll_once()
            except (BotoCoreError, ClientError):
                delivered = 0
                self._stop.wait(0.5)
            if delivered == 0:
                self.idle.set()
            else:
                self.idle.clear()

    def poll_once(self) -> int:
        """One receive + invoke + delete round; returns how many messages were delivered."""
        resp = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait,
            MessageSystemAttributeNames=["All"],
        )
        messages = resp.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(m) for m in messages]}
        result = self._lambda.invoke(FunctionName=self._function, Payload=json.dumps(event))
        payload = json.loads(result["Payload"].read() or b"{}")
        if result.get("FunctionError"):
            return len(messages)  # whole batch is retried after the visibility timeout
        failed = {f.get("itemIdentifier") for f in payload.get("batchItemFailures", []) or []}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }
