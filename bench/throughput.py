"""Throughput, latency and footprint of `chute up` (issue 12): the real path for every file
(staging upload -> S3 event -> SQS -> trigger -> state machine -> validate -> convert -> archive
-> completion message), measured from outside, as a user's client sees it.

    .venv/bin/python bench/throughput.py [--files 1000] [--latency-runs 20] [--settle 40]
                                         [--cold-runs 2] [--make-run] [--json]
                                         [--markdown bench/results.md]

Starts `chute up --fresh` as a subprocess in a temporary folder (its own ports), then prints:
- start: seconds until the banner; idle RSS and PSS of its whole process tree (endpoint, the
  Lambda runtime's template, workers) 5 s after start and once idle workers are stopped
- latency: one small file at a time on the idle runtime, upload -> completion message (sent by
  the last state, after the output is written and the original archived): p50/p95/max, and
  where the time goes (upload -> execution start; each state's duration, from the histories)
- load: ``--files`` small files uploaded at once (16 threads): files/s from the first upload
  to the last completion message, peak tree RSS during the load and after ``--settle`` s
  (past the 30 s after which idle Lambda workers are stopped, by default)
- latency after idle: ``--cold-runs`` files, each after the runtime stopped its idle workers
  (every step of the file starts a worker from the runtime's template)
- state transitions per file (StateEntered events of the execution histories)
- with ``--make-run``: wall time of `chute run samples ...` (what `make run` runs)

Completions are read by long-polling an SQS queue subscribed to the completion topic (no
ListExecutions loop adding load to the endpoint). Exit code 1 if a file did not succeed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import BotoCoreError, ClientError  # noqa: E402

from bench.load import small_csv  # noqa: E402
from bench.load_watch import PeakRss, tree_pss_bytes, tree_rss_bytes  # noqa: E402
from chute.local.embedded import free_port  # noqa: E402
from chute.local.lambda_workers import IDLE_SECONDS  # noqa: E402
from chute.ops.resources import Resources  # noqa: E402

SECTION = "## Throughput, latency, footprint (issue 12)"
CHUTE = Path(sys.executable).with_name("chute")


@dataclass
class Figures:
    start_seconds: float = 0.0
    idle_rss_mib: float = 0.0
    idle_pss_mib: float = 0.0
    idle_later_rss_mib: float = 0.0
    idle_later_pss_mib: float = 0.0
    latency: dict[str, float] = field(default_factory=dict)
    breakdown_ms: dict[str, float] = field(default_factory=dict)
    files: int = 0
    succeeded: int = 0
    files_per_second: float = 0.0
    upload_seconds: float = 0.0
    load_rss_mib: float = 0.0
    after_rss_mib: float = 0.0
    transitions_per_file: dict[str, float] = field(default_factory=dict)
    make_run_seconds: float | None = None
    cpu_seconds_per_file: float = 0.0
    max_loadavg: float = 0.0
    cold_latencies: list[float] = field(default_factory=list)


def _mib(n: int) -> float:
    return round(n / 2**20, 0)


def _tree_cpu_seconds(root: int) -> float:
    from bench.load_watch import _children

    tree, todo, total = _children(root), [root], 0.0
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(tree.get(pid, []))
    return total


class ChuteUp:
    """`chute up --fresh` in a temporary folder, until stopped."""

    def __init__(self, *options: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="chute-throughput-"))
        self.port, self.grant_port = free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.options = options
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 120) -> float:
        began = time.monotonic()
        self.process = subprocess.Popen(
            [
                str(CHUTE),
                "up",
                "--fresh",
                f"--port={self.port}",
                f"--grant-port={self.grant_port}",
                f"--console-port={free_port()}",
                *self.options,
            ],
            cwd=self.folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "chute embedded AWS on" in line:
                threading.Thread(target=self._drain, daemon=True).start()
                return time.monotonic() - began
            if time.monotonic() - began > timeout:
                break
        raise SystemExit("chute up did not start")

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for _ in self.process.stdout:
            pass

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="chute",
        aws_secret_access_key="chute",
        config=Config(retries={"mode": "standard"}, max_pool_connections=32),
    )


class Completions:
    """Completion messages (one per finished file), read by long polling on a thread."""

    def __init__(self, endpoint: str, resources: Resources) -> None:
        self.sqs = _client(endpoint, "sqs")
        name = f"bench-completions-{uuid.uuid4().hex[:8]}"
        self.url = str(self.sqs.create_queue(QueueName=name)["QueueUrl"])
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        _client(endpoint, "sns").subscribe(
            TopicArn=resources.completion_topic_arn,
            Protocol="sqs",
            Endpoint=arn,
            Attributes={"RawMessageDelivery": "true"},
        )
        self.at: dict[str, float] = {}
        self.status: dict[str, str] = {}
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=2
                ).get("Messages", [])
            except (BotoCoreError, ClientError):
                if self._stop.wait(0.5):
                    return
                continue
            now = time.monotonic()
            for m in messages:
                body = json.loads(m["Body"])
                key = str(body.get("source", {}).get("key", ""))
                with self.changed:
                    self.at.setdefault(key, now)
                    self.status[key] = str(body.get("status", ""))
                    self.changed.notify_all()
            if messages:
                self.sqs.delete_message_batch(
                    QueueUrl=self.url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )

    def wait(self, keys: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not all(k in self.at for k in keys):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.changed.wait(remaining)
        return True

    def stop(self) -> None:
        self._stop.set()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        page = sfn.get_execution_history(
            executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {})
        )
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events


def _executions_by_key(sfn: Any, machine: str, prefix: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
        for item in page["executions"]:
            desc = sfn.describe_execution(executionArn=item["executionArn"])
            key = json.loads(desc.get("input") or "{}").get("source", {}).get("key", "")
            if key.startswith(prefix):
                found[key].append(desc)
    return found


def _state_durations(events: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per state (entered -> exited) of one history."""
    entered: dict[str, float] = {}
    out: dict[str, float] = {}
    for e in events:
        kind = e["type"]
        if kind.endswith("StateEntered"):
            entered[e["stateEnteredEventDetails"]["name"]] = e["timestamp"].timestamp()
        elif kind.endswith("StateExited"):
            name = e["stateExitedEventDetails"]["name"]
            if name in entered:
                out[name] = e["timestamp"].timestamp() - entered[name]
    return out


def one_file(
    up: ChuteUp, completions: Completions, resources: Resources, key: str, seed: int
) -> float:
    """Upload one small file; seconds until its completion message."""
    s3 = _client(up.endpoint, "s3")
    began = time.monotonic()
    s3.put_object(Bucket=resources.staging_bucket, Key=key, Body=small_csv(seed))
    if not completions.wait([key], timeout=120):
        raise SystemExit(f"no completion for {key}")
    return completions.at[key] - began


def measure_latency(
    up: ChuteUp, completions: Completions, resources: Resources, runs: int, figures: Figures
) -> None:
    sfn = _client(up.endpoint, "stepfunctions")
    prefix = f"latency/{uuid.uuid4().hex[:8]}/"
    latencies: list[float] = []
    uploaded_at: dict[str, float] = {}
    for i in range(runs):
        key = f"{prefix}{i:03d}.csv"
        uploaded_at[key] = time.time()
        latencies.append(one_file(up, completions, resources, key, i))
        time.sleep(0.2)  # idle between files
    figures.latency = {
        "runs": runs,
        "p50": round(statistics.median(latencies), 3),
        "p95": round(_percentile(latencies, 0.95), 3),
        "max": round(max(latencies), 3),
    }
    parts: dict[str, list[float]] = defaultdict(list)
    for key, descs in _executions_by_key(sfn, resources.state_machine_arn, prefix).items():
        desc = descs[0]
        parts["upload -> execution started (S3 event, SQS, trigger)"].append(
            desc["startDate"].timestamp() - uploaded_at[key]
        )
        events = _history(sfn, desc["executionArn"])
        for name, seconds in _state_durations(events).items():
            parts[name].append(seconds)
        parts["execution (start -> end)"].append(
            desc["stopDate"].timestamp() - desc["startDate"].timestamp()
        )
    figures.breakdown_ms = {k: round(statistics.median(v) * 1000, 0) for k, v in parts.items()}


def measure_load(
    up: ChuteUp, completions: Completions, resources: Resources, files: int, figures: Figures
) -> None:
    s3 = _client(up.endpoint, "s3")
    prefix = f"load/{uuid.uuid4().hex[:8]}/"
    keys = [f"{prefix}{i:05d}.csv" for i in range(files)]
    cpu_before = _tree_cpu_seconds(up.pid)
    with PeakRss(up.pid) as rss:
        began = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda k: s3.put_object(
                        Bucket=resources.staging_bucket, Key=k, Body=small_csv(keys.index(k))
                    ),
                    keys,
                )
            )
        figures.upload_seconds = round(time.monotonic() - began, 1)
        finished = completions.wait(keys, timeout=3600)
        last = max((completions.at.get(k, time.monotonic()) for k in keys), default=began)
    figures.cpu_seconds_per_file = round((_tree_cpu_seconds(up.pid) - cpu_before) / files, 3)
    figures.files = files
    figures.succeeded = sum(1 for k in keys if completions.status.get(k) == "SUCCEEDED")
    figures.files_per_second = round(files / (last - began), 2) if finished else 0.0
    figures.load_rss_mib = _mib(rss.peak)
    figures.max_loadavg = round(rss.loadavg, 1)
    sfn = _client(up.endpoint, "stepfunctions")
    sample = list(_executions_by_key(sfn, resources.state_machine_arn, prefix).values())[:20]
    counts = [
        sum(1 for e in _history(sfn, descs[0]["executionArn"]) if e["type"].endswith("Entered"))
        for descs in sample
    ]
    figures.transitions_per_file = {
        "sampled": len(counts),
        "mean": round(statistics.mean(counts), 1) if counts else 0.0,
        "max": max(counts, default=0),
    }


def measure_make_run() -> float:
    folder = Path(tempfile.mkdtemp(prefix="chute-make-run-"))
    began = time.monotonic()
    subprocess.run(
        [
            str(CHUTE),
            "run",
            str(REPO / "samples"),
            "--large-threshold",
            "100000",
            "--expect-quarantine",
            "broken.csv",
            f"--port={free_port()}",
        ],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return round(time.monotonic() - began, 1)


def render(f: Figures) -> str:
    lines = [
        f"start (to banner)        {f.start_seconds:.1f} s",
        f"idle RSS (tree)          {f.idle_rss_mib:.0f} MiB 5 s after start,"
        f" {f.idle_later_rss_mib:.0f} MiB {IDLE_SECONDS + 6:.0f} s after"
        f" (PSS {f.idle_pss_mib:.0f} / {f.idle_later_pss_mib:.0f} MiB)",
        f"latency, one small file  p50 {f.latency.get('p50', 0):.3f} s, p95"
        f" {f.latency.get('p95', 0):.3f} s, max {f.latency.get('max', 0):.3f} s"
        f" ({f.latency.get('runs', 0):.0f} runs)",
        "  where the time goes (median ms):",
        *[f"    {k:<55} {v:>6.0f}" for k, v in f.breakdown_ms.items()],
        f"load                     {f.files} files, {f.succeeded} SUCCEEDED,"
        f" uploaded in {f.upload_seconds:.1f} s",
        f"throughput               {f.files_per_second:.2f} files/s",
        f"CPU per file (tree)      {f.cpu_seconds_per_file * 1000:.0f} ms",
        f"peak RSS under load      {f.load_rss_mib:.0f} MiB (tree)",
        f"RSS after the load       {f.after_rss_mib:.0f} MiB (tree)",
        "latency after idle       "
        + (", ".join(f"{x:.3f} s" for x in f.cold_latencies) or "-")
        + " (workers stopped: every step a cold start)",
        f"transitions per file     mean {f.transitions_per_file.get('mean', 0)},"
        f" max {f.transitions_per_file.get('max', 0)}"
        f" ({f.transitions_per_file.get('sampled', 0):.0f} histories)",
        f"max load average         {f.max_loadavg:.1f} (1 min, whole machine)",
    ]
    if f.make_run_seconds is not None:
        lines.append(f"chute run samples        {f.make_run_seconds:.1f} s (what `make run` runs)")
    return "\n".join(lines)


def update_markdown(path: Path, figures: Figures, command: str) -> None:
    body = "\n".join(
        [
            SECTION,
            "",
            f"`{command}` ({time.strftime('%Y-%m-%d')}; 2 cores shared with other engineers'"
            f" work, 1-minute load average up to {figures.max_loadavg:.1f}):",
            "",
            "```",
            render(figures),
            "```",
            "",
        ]
    )
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + (text[end + 1 :] if end >= 0 else "")
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--settle", type=float, default=40.0, help="seconds before 'after' RSS")
    parser.add_argument("--cold-runs", type=int, default=2)
    parser.add_argument("--make-run", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    if args.files < 1 or args.latency_runs < 1:
        parser.error("--files and --latency-runs must be >= 1")
    figures = Figures()
    up = ChuteUp()
    try:
        figures.start_seconds = round(up.start(), 1)
        resources = Resources(prefix="chute", region="us-east-1")
        completions = Completions(up.endpoint, resources)
        time.sleep(5)  # the Lambda runtime's template finishes its imports
        figures.idle_rss_mib = _mib(tree_rss_bytes(up.pid))
        figures.idle_pss_mib = _mib(tree_pss_bytes(up.pid))
        time.sleep(IDLE_SECONDS + 1)  # workers started at start (S3's test event) are stopped
        figures.idle_later_rss_mib = _mib(tree_rss_bytes(up.pid))
        figures.idle_later_pss_mib = _mib(tree_pss_bytes(up.pid))
        measure_latency(up, completions, resources, args.latency_runs, figures)
        measure_load(up, completions, resources, args.files, figures)
        time.sleep(args.settle)
        figures.after_rss_mib = _mib(tree_rss_bytes(up.pid))
        for i in range(args.cold_runs):
            time.sleep(IDLE_SECONDS + 6)  # the reaper looks every 5 s
            figures.cold_latencies.append(
                round(one_file(up, completions, resources, f"cold/{i:03d}.csv", i), 3)
            )
        completions.stop()
    finally:
        up.stop()
    if args.make_run:
        figures.make_run_seconds = measure_make_run()
    print(json.dumps(asdict(figures), indent=2) if args.json else render(figures))
    if args.markdown:
        command = "python bench/throughput.py " + " ".join(argv or sys.argv[1:])
        update_markdown(args.markdown, figures, command.strip())
    return 0 if figures.succeeded == figures.files else 1


if __name__ == "__main__":
    sys.exit(main())
