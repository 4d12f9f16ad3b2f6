"""Load (issue 10): N small valid CSVs and M large ones uploaded at once; every key must end with
exactly one terminal outcome, none lost, none published twice.

    .venv/bin/python bench/load.py [--small 1000] [--large 3] [--large-mib 16]
                                   [--threshold-bytes 1048576] [--endpoint-url URL [--pid PID]]
                                   [--uploaders 16] [--timeout 3600] [--json] [--markdown FILE]

Without ``--endpoint-url`` it starts the embedded runtime in this process (chute.local.embedded, the
Batch route lowered to ``--threshold-bytes`` so the large files take it) and measures the peak
RSS of this process tree (the endpoint, its Lambda workers and Batch jobs). With
``--endpoint-url`` it loads a running ``chute up`` (large files must reach its
``--large-threshold``: the threshold is read from its state machine); ``--pid`` names the
process whose tree to measure.

Printed: files, terminal outcomes by status, lost (no terminal outcome, or an outcome the
buckets don't back: see tests/support/accounting.py), duplicated (a key with more than one
SUCCEEDED execution or more than one completion message), wall time (first upload to last
terminal outcome), files/s, peak RSS of the process tree. Exit code 1 if any file is lost or
duplicated. Not a test: `make test` runs the small version, tests/workflow/test_load.py.
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


def _drain(sqs: Any, url: str, into: Counter[str], prefix: str) -> None:
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return
        for m in messages:
            body = json.loads(m["Body"])
            key = str(body.get("source", {}).get("key", ""))
            if key.startswith(prefix):
                into[key] += 1
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


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

    def upload(key: str) -> None:
        seed = bodies[key]
        assert isinstance(seed, int)
        body = large_bodies[-1 - seed] if seed < 0 else small_csv(seed)
        s3.put_object(Bucket=resources.staging_bucket, Key=key, Body=body)

    # key of each execution (one DescribeExecution per new execution), its status from the list
    key_of: dict[str, str | None] = {}
    status_of: dict[str, str] = {}

    def poll() -> dict[str, list[str]]:
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=resources.state_machine_arn
        )
        for page in pages:
            for item in page["executions"]:
                arn = item["executionArn"]
                status_of[arn] = item["status"]
                if arn not in key_of:
                    desc = sfn.describe_execution(executionArn=arn)
                    key_of[arn] = source_of(desc.get("input")).get("key")
        by_key: dict[str, list[str]] = {}
        for arn, key in key_of.items():
            if key is not None and key.startswith(prefix):
                by_key.setdefault(key, []).append(status_of[arn])
        return by_key

    completions: Counter[str] = Counter()
    with PeakRss(rss_root) as rss:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=uploaders) as pool:
            list(pool.map(upload, keys))
        progress(f"uploaded {len(keys)} files in {time.monotonic() - started:.1f} s")
        deadline = started + timeout
        finished_at = started
        last = ""
        while True:
            by_key = poll()
            done = sum(1 for statuses in by_key.values() if statuses and "RUNNING" not in statuses)
            line = f"{done}/{len(keys)} keys finished, {len(by_key)} started"
            if line != last:
                progress(f"{time.monotonic() - started:7.1f} s  {line}")
                last = line
            if done == len(keys):
                finished_at = time.monotonic()
                break
            if time.monotonic() > deadline:
                finished_at = time.monotonic()
                progress("timed out: the keys without a terminal outcome count as lost")
                break
            time.sleep(2)
        peak, loadavg = rss.peak, rss.loadavg
    wall = finished_at - started
    time.sleep(1)  # completion messages are published by the last state
    _drain(sqs, completions_url, completions, prefix)

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
        if len(succeeded) > 1 or completions[key] > 1:
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
