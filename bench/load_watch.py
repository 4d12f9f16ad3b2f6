"""The load harness's instruments (bench/load.py): memory and CPU of a process tree, completion
messages read as they arrive, executions listed when they stall, first/last window rates."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chute.ops.executions import source_of
from chute.ops.resources import Resources


# --- memory and CPU of a process tree ---------------------------------------------------------
def _children(pid: int) -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants (Linux /proc)."""
    tree = _children(root)
    total, todo = 0, [root]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        with suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        todo.extend(tree.get(pid, []))
    return total


def tree_pss_bytes(root: int) -> int:
    """Proportional memory of ``root`` and its descendants: each shared page counted once
    across them (summed RSS counts it in every process mapping it; Linux /proc)."""
    tree = _children(root)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        with suppress(OSError, IndexError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        todo.extend(tree.get(pid, []))
    return total


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` alone, all its threads (Linux /proc)."""
    with suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(f) for f in fields[11:13]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) of ``root`` and its descendants, with what their finished
    children (stopped workers, Batch jobs) used (Linux /proc)."""
    tree, todo, total = _children(root), [root], 0.0
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        pid = todo.pop()
        with suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / tick
        todo.extend(tree.get(pid, []))
    return total


class PeakRss:
    """Samples the tree's RSS every ``every`` seconds on a thread; ``peak`` is the highest sum."""

    def __init__(self, root: int | None, every: float = 0.5) -> None:
        self.root, self.every, self.peak = root, every, 0
        self.loadavg = 0.0
        """Highest 1-minute load average seen (the machine's other work shows here)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.loadavg = max(self.loadavg, os.getloadavg()[0])
            if self.root is not None:
                self.peak = max(self.peak, tree_rss_bytes(self.root))
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the run ---------------------------------------------------------------------------------


# --- completions ------------------------------------------------------------------------------
def completions_queue(sqs: Any, sns: Any, topic_arn: str, name: str) -> str:
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return url


class Completions:
    """Completion messages of the run's keys (one per file that reached Done or Rejected), read
    by long polling on a thread: when each was sent (its SentTimestamp, so a message read late
    counts when it arrived), how many times. After a batch of fewer than ten the reader waits
    ``pause`` seconds before asking again: the harness then costs the endpoint it measures a
    request per ~10 completions under load instead of one per completion."""

    def __init__(self, sqs: Any, url: str, prefix: str, pause: float = 0.5) -> None:
        self.sqs, self.url, self.prefix, self.pause = sqs, url, prefix, pause
        self.at: dict[str, float] = {}
        self.count: Counter[str] = Counter()
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="load-completions")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.read_once(wait_seconds=1) < 10:
                    self._stop.wait(self.pause)
            except (BotoCoreError, ClientError):  # busy or stopping: read again
                self._stop.wait(0.5)

    def read_once(self, wait_seconds: int = 0) -> int:
        messages = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            MessageSystemAttributeNames=["SentTimestamp"],
        ).get("Messages", [])
        now, wall = time.monotonic(), time.time()
        with self.changed:
            for m in messages:
                key = str(json.loads(m["Body"]).get("source", {}).get("key", ""))
                if key.startswith(self.prefix):
                    sent = int(m.get("Attributes", {}).get("SentTimestamp", wall * 1000)) / 1000
                    self.at.setdefault(key, now - max(0.0, wall - sent))
                    self.count[key] += 1
            self.changed.notify_all()
        if messages:
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        return len(messages)

    def wait_for_more(self, seen: int, timeout: float) -> int:
        with self.changed:
            self.changed.wait_for(lambda: len(self.at) > seen, timeout=timeout)
            return len(self.at)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        while self.read_once():  # what arrived since
            pass


def rates(
    started: float, uploaded_at: dict[str, float], done_at: dict[str, float], window: int
) -> tuple[float, float, dict[str, float]]:
    """(first window's files/s, last window's files/s, latency percentiles)."""
    finished = sorted(done_at.values())
    if len(finished) < 2 * window or window < 1:
        return 0.0, 0.0, {}
    first = window / max(finished[window - 1] - started, 1e-9)
    last = window / max(finished[-1] - finished[-window - 1], 1e-9)
    waits = sorted(done_at[k] - uploaded_at[k] for k in done_at if k in uploaded_at)

    def pick(q: float) -> float:
        return round(waits[min(len(waits) - 1, round(q * (len(waits) - 1)))], 2)

    return round(first, 2), round(last, 2), {"p50": pick(0.5), "p95": pick(0.95), "max": pick(1)}


class Executions:
    """The run's keys by execution status, from ListExecutions (one DescribeExecution per new
    execution): asked only when completion messages stall (an execution that ends FAILED sends
    none), so the harness doesn't load the endpoint it measures."""

    def __init__(self, sfn: Any, resources: Resources, prefix: str) -> None:
        self.sfn, self.arn, self.prefix = sfn, resources.state_machine_arn, prefix
        self.key_of: dict[str, str | None] = {}

    def finished_keys(self) -> tuple[int, int]:
        """(keys with executions all ended, keys with an execution)."""
        status_of: dict[str, str] = {}
        for page in self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.arn):
            for item in page["executions"]:
                arn = item["executionArn"]
                status_of[arn] = item["status"]
                if arn not in self.key_of:
                    desc = self.sfn.describe_execution(executionArn=arn)
                    self.key_of[arn] = source_of(desc.get("input")).get("key")
        by_key: dict[str, list[str]] = {}
        for arn, key in self.key_of.items():
            if key is not None and key.startswith(self.prefix) and arn in status_of:
                by_key.setdefault(key, []).append(status_of[arn])
        return sum(1 for s in by_key.values() if "RUNNING" not in s), len(by_key)


def wait_all(
    keys: list[str],
    completions: Completions,
    executions: Executions,
    deadline: float,
    progress: Callable[[str], None],
) -> float:
    """When the last key reached its terminal outcome: its completion message, or (when they
    stall for 15 s) every key's executions ended."""
    seen, began, said = 0, time.monotonic(), 0.0
    while True:
        now_seen = completions.wait_for_more(seen, timeout=15)
        now = time.monotonic()
        if now_seen == len(keys):
            return max(completions.at.values())
        if now_seen == seen:  # stalled: failed executions send no message
            done, started = executions.finished_keys()
            if done == len(keys):
                return time.monotonic()
            line = f"{done}/{len(keys)} keys finished, {started} started"
        else:
            line = f"{now_seen}/{len(keys)} completion messages"
        seen = now_seen
        if now - said >= 5:
            progress(f"{now - began:7.1f} s  {line}")
            said = now
        if now > deadline:
            progress("timed out: the keys without a terminal outcome count as lost")
            return now
