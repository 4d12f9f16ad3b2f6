"""The local SQS event source (chute.local.event_source): no more files are received while the
pipeline has its maximum of running executions (a backlog waits in the queue)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from chute.local.event_source import SqsEventSource


class _FakeSqs:
    def __init__(self) -> None:
        self.receives = 0
        self.received = threading.Event()

    def receive_message(self, **_: Any) -> dict[str, Any]:
        self.receives += 1
        self.received.set()
        time.sleep(0.01)
        return {"Messages": []}


class _FakeLambda:
    def invoke(self, **_: Any) -> dict[str, Any]:
        raise AssertionError("no message, no invocation")


def _source(sqs: _FakeSqs, running: Callable[[], int], max_running: int) -> SqsEventSource:
    return SqsEventSource(
        sqs=sqs,
        lambda_client=_FakeLambda(),
        queue_url="http://queue",
        queue_arn="arn:aws:sqs:us-east-1:123456789012:q",
        function_name="chute-trigger",
        region="us-east-1",
        running=running,
        max_running=max_running,
    )


def test_no_message_is_received_while_the_running_executions_are_at_the_limit() -> None:
    # GIVEN 5 running executions and a limit of 5
    sqs, running = _FakeSqs(), [5]
    source = _source(sqs, lambda: running[0], max_running=5)
    source.start()
    try:
        # WHEN the event source has had time to poll THEN it received nothing
        assert not sqs.received.wait(timeout=0.5)
        assert source.saturated()
        # WHEN one execution ends THEN it receives again
        running[0] = 4
        assert sqs.received.wait(timeout=10)
    finally:
        source.stop()


def test_without_a_limit_or_a_count_it_always_receives() -> None:
    def broken() -> int:
        raise RuntimeError("no state machine")

    assert not _source(_FakeSqs(), lambda: 10**6, max_running=0).saturated()
    assert not _source(_FakeSqs(), broken, max_running=5).saturated()
