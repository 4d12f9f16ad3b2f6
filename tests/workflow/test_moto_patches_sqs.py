"""SQS (chute/local/moto_patches/sqs.py): a request's cost doesn't grow with the messages queued;
DeleteMessage removes one message under the queue's lock.

How these tests go: tests/support/moto_patches.py. Costs are counted (clock reads, receipt
handle scans), never timed.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from moto.sqs import models as sqs_models

from chute.local.embedded import EmbeddedAws
from chute.ops.resources import ACCOUNT_ID
from tests.support.moto_patches import without

CLOCK_FIXES = (
    "sqs-visible-clock-once",
    "sqs-delayed-clock-once",
    "sqs-not-visible-clock-once",
    "sqs-retention-from-queue",
)
QUEUED = 200


@contextmanager
def _count_clock_reads() -> Iterator[list[int]]:
    real = sqs_models.unix_time_millis
    reads = [0]

    def counting(*args: Any) -> float:
        reads[0] += 1
        return real(*args)

    sqs_models.unix_time_millis = counting  # type: ignore[assignment]
    try:
        yield reads
    finally:
        sqs_models.unix_time_millis = real  # type: ignore[assignment]


@pytest.fixture
def backlog(embedded: EmbeddedAws) -> Iterator[tuple[Any, str]]:
    """A queue of its own holding QUEUED messages."""
    sqs = embedded.client("sqs")
    url = sqs.create_queue(QueueName=f"probe-backlog-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for start in range(0, QUEUED, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)],
        )
    yield sqs, url
    sqs.delete_queue(QueueUrl=url)


def _receive_reads(sqs: Any, url: str) -> int:
    with _count_clock_reads() as reads:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    assert len(got) == 1
    return reads[0]


def _send_reads(sqs: Any, url: str) -> int:
    """SendMessage (what each S3 event is) builds the queue's attributes once."""
    with _count_clock_reads() as reads:
        sqs.send_message(QueueUrl=url, MessageBody="one more")
    return reads[0]


@contextmanager
def _count_attribute_builds() -> Iterator[list[int]]:
    real = sqs_models.Queue.attributes
    builds = [0]

    def counting(queue: Any) -> Any:
        builds[0] += 1
        return real.fget(queue)

    sqs_models.Queue.attributes = property(counting)  # type: ignore[assignment,method-assign]
    try:
        yield builds
    finally:
        sqs_models.Queue.attributes = real  # type: ignore[method-assign]


def test_receiving_and_sending_read_the_clock_a_bounded_number_of_times(
    backlog: tuple[Any, str],
) -> None:
    sqs, url = backlog
    # not per message queued (QUEUED here)
    assert _receive_reads(sqs, url) <= 5
    assert _send_reads(sqs, url) <= 10


def test_receiving_does_not_build_the_queue_attributes(backlog: tuple[Any, str]) -> None:
    sqs, url = backlog
    with _count_attribute_builds() as builds:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    assert builds[0] == 0


@pytest.mark.canary
def test_canary_listing_still_reads_the_clock_per_message_queued(
    backlog: tuple[Any, str],
) -> None:
    sqs, url = backlog
    with without("sqs-visible-clock-once"):
        assert _receive_reads(sqs, url) > QUEUED


@pytest.mark.canary
def test_canary_counting_delayed_still_reads_the_clock_per_message(
    backlog: tuple[Any, str],
) -> None:
    sqs, url = backlog
    with without("sqs-delayed-clock-once"):
        assert _send_reads(sqs, url) > QUEUED


@pytest.mark.canary
def test_canary_counting_in_flight_still_reads_the_clock_per_message(
    backlog: tuple[Any, str],
) -> None:
    sqs, url = backlog
    with without("sqs-not-visible-clock-once"):
        assert _send_reads(sqs, url) > QUEUED


@pytest.mark.canary
def test_canary_receiving_still_builds_the_attributes_per_message(
    backlog: tuple[Any, str],
) -> None:
    sqs, url = backlog
    with without("sqs-retention-from-queue"), _count_attribute_builds() as builds:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    assert builds[0] >= 10


def test_counts_and_listing_agree_with_moto(backlog: tuple[Any, str]) -> None:
    """The same answers as moto's own properties, a message in flight and one delayed."""
    sqs, url = backlog
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=60)
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    queue = sqs_models.sqs_backends[ACCOUNT_ID]["us-east-1"].get_queue(url.rsplit("/", 1)[1])
    ours = (
        len(queue.messages),
        queue.approximate_number_of_messages_delayed,
        queue.approximate_number_of_messages_not_visible,
    )
    with ExitStack() as stack:
        for name in CLOCK_FIXES:
            stack.enter_context(without(name))
        theirs = (
            len(queue.messages),
            queue.approximate_number_of_messages_delayed,
            queue.approximate_number_of_messages_not_visible,
        )
    assert ours == theirs == (QUEUED - 3, 1, 3)


def _queue(url: str) -> Any:
    return sqs_models.sqs_backends[ACCOUNT_ID]["us-east-1"].get_queue(url.rsplit("/", 1)[1])


def test_delete_waits_for_the_queue_lock_and_removes_only_its_message(
    backlog: tuple[Any, str],
) -> None:
    sqs, url = backlog
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    queue = _queue(url)
    deleter = threading.Thread(target=lambda: queue.delete_message(handle))
    with queue._messages_lock:  # as SendMessage holds it while it appends
        deleter.start()
        deleter.join(timeout=0.3)
        assert deleter.is_alive()  # it waits: the list is not replaced under an append
    deleter.join(timeout=10)
    assert not deleter.is_alive()
    assert len(queue._messages) == QUEUED - 1
    queue.delete_message(handle)  # deleting again is accepted, as on AWS


@pytest.mark.canary
def test_canary_delete_still_ignores_the_queue_lock(backlog: tuple[Any, str]) -> None:
    sqs, url = backlog
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    queue = _queue(url)
    with without("sqs-delete-one-pass"):
        deleter = threading.Thread(target=lambda: queue.delete_message(handle))
        with queue._messages_lock:
            deleter.start()
            deleter.join(timeout=10)
            assert not deleter.is_alive()  # done while another thread holds the lock
