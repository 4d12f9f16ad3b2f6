"""Load (issue 10): N small valid CSVs and M large ones uploaded at once; every key must end with
exactly one terminal outcome, none lost, none published twice.

    .venv/bin/python bench/load.py [--small 1000] [--large 3] [--large-mib 16]
                                   [--threshold-bytes 1048576] [--endpoint-url URL [--pid PID]]
                                   [--uploaders 16] [--timeout 3600] [--json] [--markdown FILE]
                                   [--without FIX]...

Without ``--endpoint-url`` it starts the embedded runtime in this process (chute.local.embedded, the
Batch route lowered to ``--threshold-bytes`` so the large files take it) and measures the peak
RSS of this process tree (the endpoint, its Lambda workers and Batch jobs). With
``--endpoint-url`` it loads a running ``chute up`` (large files must reach its
``--large-threshold``: the threshold is read from its state machine); ``--pid`` names the
process whose tree to measure.

Printed: files, terminal outcomes by status, lost (no terminal outcome, or an outcome the
buckets don't back: see tests/support/accounting.py), duplicated (a key with more than one
SUCCEEDED execution or more than one completion message), wall time (first upload to last
terminal outcome), files/s, peak RSS of the process tree; the backlog (issue 25): files/s of
the first and of the last 1,000 completions (a fifth of a smaller run), and each file's upload
to completion message (p50/p95/max). The harness waits on completion messages (an SQS queue
subscribed to the completion topic) and lists executions only when they stall, so it doesn't
load the endpoint it measures. Exit code 1 if any file is lost or duplicated. Not a test: `make test` runs the small version, tests/workflow/test_load.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from chute.local.embedded import EmbeddedAws, LocalSettings, Resources, free_port  # noqa: E402
from chute.ops.executions import source_of  # noqa: E402
from tests.support.accounting import key_states, outcome_of  # noqa: E402

SECTION = "## Load (issue 10)"


# --- memory of a process tree ----------------------------------------------------------------
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
@dataclass
class LoadResult:
    files: int
    small: int
    large: int
    large_bytes: int
    threshold_bytes: int
    outcomes: dict[str, int]
    lost: list[str]
    duplicated: list[str]
    routes: dict[str, int]
    wall_seconds: float
    files_per_second: float
    peak_rss_mib: float | None
    dlq_messages: int
    executions: int
    max_loadavg: float
    problems: list[str] = field(default_factory=list)
    window: int = 0
    """How many files the first/last rates are taken over (1,000, or a fifth of a smaller run)."""
    first_files_per_second: float = 0.0
    """The first ``window`` completions over the time from the first upload to the last of them."""
    last_files_per_second: float = 0.0
    """The last ``window`` completions over the time between the completion before them and the
    last one: flat throughput gives about the same figure as the first window."""
    latency_seconds: dict[str, float] = field(default_factory=dict)
    """Upload (its PutObject answered) to completion message, per file: p50, p95, max."""

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated


def small_csv(i: int) -> bytes:
    return f"id,name,amount\n{i},name-{i},{i * 0.25}\n{i + 1},other-{i},{i * 0.5}\n".encode()


def large_csv(size: int, seed: int) -> bytes:
    row = f"{seed},some-name,12.5,a longer text field to fill the row,2026-12-03T10:00:00Z\n"
    header = b"id,name,amount,comment,at\n"
    return header + row.encode() * ((size - len(header)) // len(row) + 1)


@dataclass
class _Handle:
    """What the accounting helper needs (tests.support.accounting.PipelineLike)."""

    r: Any
    s3: Any
    sfn: Any


def _threshold_of(sfn: Any, arn: str) -> int:
    definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
    found = re.search(
        r"largeFileThresholdBytes\.\$\"\s*:\s*\"States\.StringToJson\('(\d+)'\)", definition
    )
    if not found:
        raise SystemExit("could not read the large-file threshold from the state machine")
    return int(found.group(1))


def _completions_queue(sqs: Any, sns: Any, topic_arn: str, name: str) -> str:
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


class _Completions:
    """Completion messages of the run's keys (one per file that reached Done or Rejected), read
    by long polling on a thread: when each arrived, how many times."""

    def __init__(self, sqs: Any, url: str, prefix: str) -> None:
        self.sqs, self.url, self.prefix = sqs, url, prefix
        self.at: dict[str, float] = {}
        self.count: Counter[str] = Counter()
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="load-completions")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.read_once(wait_seconds=1)
            except (BotoCoreError, ClientError):  # busy or stopping: read again
                self._stop.wait(0.5)

    def read_once(self, wait_seconds: int = 0) -> int:
        messages = self.sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        now = time.monotonic()
        with self.changed:
            for m in messages:
                key = str(json.loads(m["Body"]).get("source", {}).get("key", ""))
                if key.startswith(self.prefix):
                    self.at.setdefault(key, now)
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


def _rates(
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


class _Executions:
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


def _wait_all(
    keys: list[str],
    completions: _Completions,
    executions: _Executions,
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


def run_load(
    client: Callable[[str], Any],
    resources: Resources,
    *,
    small: int,
    large: int,
    large_bytes: int,
    uploaders: int = 16,
    timeout: float = 3600,
    rss_root: int | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> LoadResult:
    """Upload, wait for every key's terminal outcome, account for every key."""
    s3, sfn, sqs = client("s3"), client("stepfunctions"), client("sqs")
    run_id = uuid.uuid4().hex[:8]
    prefix = f"load/{run_id}/"
    threshold = _threshold_of(sfn, resources.state_machine_arn)
    if large and large_bytes < threshold:
        raise SystemExit(
            f"--large-mib gives {large_bytes} B, below the Batch threshold {threshold} B"
        )
    topic = resources.completion_topic_arn
    completions_url = _completions_queue(sqs, client("sns"), topic, f"load-completions-{run_id}")
    bodies: dict[str, bytes | int] = {f"{prefix}small/{i:05d}.csv": i for i in range(small)}
    bodies.update({f"{prefix}large/{i}.csv": -1 - i for i in range(large)})
    large_bodies = [large_csv(large_bytes, i) for i in range(large)]
    keys = sorted(bodies)

    uploaded_at: dict[str, float] = {}

    def upload(key: str) -> None:
        seed = bodies[key]
        assert isinstance(seed, int)
        body = large_bodies[-1 - seed] if seed < 0 else small_csv(seed)
        s3.put_object(Bucket=resources.staging_bucket, Key=key, Body=body)
        uploaded_at[key] = time.monotonic()

    completions = _Completions(sqs, completions_url, prefix)
    with PeakRss(rss_root) as rss:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=uploaders) as pool:
            list(pool.map(upload, keys))
        progress(f"uploaded {len(keys)} files in {time.monotonic() - started:.1f} s")
        finished_at = _wait_all(
            keys, completions, _Executions(sfn, resources, prefix), started + timeout, progress
        )
        peak, loadavg = rss.peak, rss.loadavg
    wall = finished_at - started
    time.sleep(1)  # a completion message of a key that also ended otherwise (duplicates)
    completions.stop()
    window = min(1000, len(keys) // 5)
    first, last, latency = _rates(started, uploaded_at, completions.at, window)

    states = key_states(_Handle(resources, s3, sfn), keys)
    outcomes: Counter[str] = Counter()
    routes: Counter[str] = Counter()
    lost: list[str] = []
    problems: list[str] = []
    duplicated: list[str] = []
    for key, state in states.items():
        try:
            outcomes[outcome_of(state)] += 1
        except AssertionError as exc:
            lost.append(key)
            problems.append(str(exc))
        succeeded = [e for e in state.executions if e.status == "SUCCEEDED"]
        if len(succeeded) > 1 or completions.count[key] > 1:
            duplicated.append(key)
        for e in state.executions:
            routes[e.route or "none"] += 1
    dlq = sqs.get_queue_attributes(
        QueueUrl=sqs.get_queue_url(QueueName=resources.dlq_name)["QueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages"],
    )["Attributes"]["ApproximateNumberOfMessages"]
    return LoadResult(
        files=len(keys),
        small=small,
        large=large,
        large_bytes=large_bytes,
        threshold_bytes=threshold,
        outcomes=dict(outcomes),
        lost=lost,
        duplicated=duplicated,
        routes=dict(routes),
        wall_seconds=round(wall, 1),
        files_per_second=round(len(keys) / wall, 2) if wall > 0 else 0.0,
        peak_rss_mib=round(peak / 2**20, 0) if rss_root is not None else None,
        dlq_messages=int(dlq),
        executions=sum(len(s.executions) for s in states.values()),
        max_loadavg=round(loadavg, 1),
        problems=problems,
        window=window,
        first_files_per_second=first,
        last_files_per_second=last,
        latency_seconds=latency,
    )


@contextmanager
def embedded_runtime(threshold: int) -> Iterator[EmbeddedAws]:
    settings = LocalSettings(
        port=free_port(),
        large_file_threshold_bytes=threshold,
        state_dir=Path(tempfile.mkdtemp(prefix="chute-load-")),
    )
    with EmbeddedAws(settings) as aws:
        yield aws


def render(result: LoadResult) -> str:
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items()))
    routes = ", ".join(f"{k} {v}" for k, v in sorted(result.routes.items()))
    rss = f"{result.peak_rss_mib:.0f} MiB" if result.peak_rss_mib is not None else "n/a"
    lines = [
        f"files              {result.files} ({result.small} small, {result.large} large of"
        f" {result.large_bytes / 2**20:.1f} MiB; Batch threshold {result.threshold_bytes} B)",
        f"terminal outcomes  {outcomes}",
        f"executions         {result.executions} (routes: {routes})",
        f"lost               {len(result.lost)}",
        f"duplicated         {len(result.duplicated)}",
        f"dead-letter queue  {result.dlq_messages} message(s)",
        f"wall time          {result.wall_seconds:.1f} s",
        f"throughput         {result.files_per_second:.2f} files/s",
        f"first/last {result.window:<7} {result.first_files_per_second:.2f} /"
        f" {result.last_files_per_second:.2f} files/s (flat: the same)",
        "latency            upload -> completion message: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in result.latency_seconds.items()),
        f"peak RSS (tree)    {rss}",
        f"max load average   {result.max_loadavg:.1f} (1 min, whole machine)",
    ]
    lines += [f"  {p}" for p in result.problems[:20]]
    return "\n".join(lines)


def update_markdown(path: Path, result: LoadResult, command: str) -> None:
    """Replace (or append) the load section of ``path``."""
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items()))
    rss = f"{result.peak_rss_mib:.0f} MiB" if result.peak_rss_mib is not None else "n/a"
    section = "\n".join(
        [
            SECTION,
            "",
            f"`{command}` (bench/load.py; {time.strftime('%Y-%m-%d')}; 2 cores shared with other"
            f" work: 1-minute load average up to {result.max_loadavg:.1f} during the run). All"
            " files uploaded at once (16 uploader threads) to the embedded runtime in the same"
            " process; wall time from the first upload to the last terminal outcome; peak RSS"
            " of the whole process tree (endpoint + Lambda workers + Batch jobs), sampled every"
            " 0.5 s. Speed is not this issue's target.",
            "",
            "| files | outcomes | lost | duplicated | DLQ | wall s | files/s | peak RSS (tree) |",
            "|---:|---|---:|---:|---:|---:|---:|---:|",
            f"| {result.files} ({result.small} small + {result.large} x"
            f" {result.large_bytes / 2**20:.0f} MiB via Batch) | {outcomes} |"
            f" {len(result.lost)} | {len(result.duplicated)} | {result.dlq_messages} |"
            f" {result.wall_seconds:.0f} | {result.files_per_second:.2f} | {rss} |",
            "",
        ]
    )
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=3)
    parser.add_argument("--large-mib", type=float, default=16.0)
    parser.add_argument("--threshold-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--endpoint-url")
    parser.add_argument("--pid", type=int, help="process whose tree's RSS to measure")
    parser.add_argument("--uploaders", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", type=Path, help="write the figures into this file's section")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="FIX",
        help="revert this moto fix (chute.local.moto_patches) after start: before/after figures"
        " in one checkout (in-process runtime only; repeatable)",
    )
    args = parser.parse_args(argv)
    if args.small < 0 or args.large < 0 or args.small + args.large == 0:
        parser.error("--small and --large must be >= 0, at least one file")
    large_bytes = int(args.large_mib * 2**20)

    def say(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    def go(client: Callable[[str], Any], resources: Resources, root: int | None) -> LoadResult:
        return run_load(
            client,
            resources,
            small=args.small,
            large=args.large,
            large_bytes=large_bytes,
            uploaders=args.uploaders,
            timeout=args.timeout,
            rss_root=root,
            progress=say,
        )

    config = Config(retries={"mode": "standard"}, max_pool_connections=args.uploaders * 2)

    def clients(endpoint_url: str) -> Callable[[str], Any]:
        def client(service: str) -> Any:
            return boto3.client(
                service,
                endpoint_url=endpoint_url,
                region_name="us-east-1",
                aws_access_key_id="chute",
                aws_secret_access_key="chute",
                config=config,
            )

        return client

    if args.endpoint_url:
        resources = Resources(prefix="chute", region="us-east-1")
        result = go(clients(args.endpoint_url), resources, args.pid)
    else:
        with embedded_runtime(args.threshold_bytes) as aws:
            say(f"embedded runtime on {aws.endpoint_url}")
            for name in args.without:
                from chute.local import moto_patches

                moto_patches.FIXES[name].revert()
                say(f"moto fix {name} reverted")
            result = go(clients(aws.endpoint_url), aws.resources, os.getpid())
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print(render(result))
    if args.markdown:
        command = "python bench/load.py " + " ".join(argv if argv is not None else sys.argv[1:])
        update_markdown(args.markdown, result, command.strip())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
