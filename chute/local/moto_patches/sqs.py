"""SQS: the cost of one request no longer grows with the messages waiting in the queue.

A backlog waits in the staging queue (one S3 event per upload) while the event source delivers
it. moto reads the clock (a ``datetime`` built and subtracted, with an import inside) twice per
message whenever it lists the visible messages, and ``queue.attributes`` lists them three times
(the approximate counts). ReceiveMessage checks each message it returns against the retention
period through GetQueueAttributes, which builds ``queue.attributes`` three times; every S3 event
builds it once (SendMessage reads ContentBasedDeduplication from it). With 1,000 messages queued
that was ~40 % of the endpoint's CPU (docs/decisions.md, 2026-12-06). Now the clock is read once
per listing and the retention period is read from the queue. DeleteMessage looked at every
message twice (building a list of receipt handles each time) and then replaced the list of
messages without the queue's lock, so a message added meanwhile (an S3 event of a concurrent
upload) could be dropped; now one pass, under the lock, removing in place.
"""

from __future__ import annotations

from typing import Any

from moto.core import utils as moto_utils
from moto.sqs.exceptions import ReceiptHandleIsInvalid
from moto.sqs.models import Queue, SQSBackend

from chute.local.moto_patches.seam import Fixes, Kind

FIXES = Fixes()


def _now_ms() -> float:
    """moto's SQS clock, as its messages read it (looked up at each call: tests replace it)."""
    from moto.sqs import models

    return float(getattr(models, "unix_time_millis", moto_utils.unix_time_millis)())


@FIXES.declare(
    "sqs-visible-clock-once",
    Kind.SPEED,
    Queue,
    "messages",
    why="listing the visible messages reads the clock twice per message queued",
)
def _visible_messages(original: Any) -> Any:
    def messages(self: Queue) -> list[Any]:
        now = _now_ms()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    return property(messages)


@FIXES.declare(
    "sqs-delayed-clock-once",
    Kind.SPEED,
    Queue,
    "approximate_number_of_messages_delayed",
    why="counting delayed messages reads the clock once per message queued",
)
def _delayed_count(original: Any) -> Any:
    def approximate_number_of_messages_delayed(self: Queue) -> int:
        now = _now_ms()
        return sum(1 for m in self._messages if now < m.delayed_until)

    return property(approximate_number_of_messages_delayed)


@FIXES.declare(
    "sqs-not-visible-clock-once",
    Kind.SPEED,
    Queue,
    "approximate_number_of_messages_not_visible",
    why="counting in-flight messages reads the clock once per message queued",
)
def _not_visible_count(original: Any) -> Any:
    def approximate_number_of_messages_not_visible(self: Queue) -> int:
        now = _now_ms()
        return sum(1 for m in self._messages if not now > m.visible_at)

    return property(approximate_number_of_messages_not_visible)


@FIXES.declare(
    "sqs-retention-from-queue",
    Kind.SPEED,
    SQSBackend,
    "is_message_valid_based_on_retention_period",
    why="every message received builds all queue attributes three times to read one",
)
def _retention_check(original: Any) -> Any:
    def is_message_valid_based_on_retention_period(
        self: SQSBackend, queue_name: str, message: Any
    ) -> bool:
        queue: Any = self.get_queue(queue_name)
        retain_until = queue.message_retention_period + message.sent_timestamp / 1000
        return bool(retain_until > moto_utils.unix_time())

    return is_message_valid_based_on_retention_period


@FIXES.declare(
    "sqs-delete-one-pass",
    Kind.SPEED,
    Queue,
    "delete_message",
    why="DeleteMessage scans the queue twice and replaces its list without the lock",
)
def _delete_message(original: Any) -> Any:
    def delete_message(self: Queue, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return  # already deleted: AWS accepts it again
        with self._messages_lock:
            found = next(
                (
                    index
                    for index, m in enumerate(self._messages)
                    if m.receipt_handle == receipt_handle
                    or receipt_handle in m._old_receipt_handles
                ),
                None,
            )
            if found is None:
                raise ReceiptHandleIsInvalid()
            message = self._messages.pop(found)
        self.pending_messages.discard(message)
        self.deleted_messages.update(h for h in message.all_receipt_handles if h)

    return delete_message
