"""A huge file through the embedded runtime two ways (issue 24): fanned out (PlanParts, a
Distributed Map of parts on the local Lambda workers, CommitParts) and as one Batch job sized to
the file (pinned to as many of this machine's cores as the job's vCPUs) — upload to archived.

    PYTHONPATH=. .venv/bin/python bench/fanout_local.py [--size-mb 2000] [--part-mb 256]

Prints the wall time of each route, the parts, and whether both routes' JSON Lines are equal.
On a 2-core machine both routes have the same 2 cores: the figure shows the fan-out's overhead
(planning, one process per part, the server-side join), not its speed-up, which comes from
many workers (docs/huge-files.md). Not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.generate import generate
from chute.local.embedded import EmbeddedAws, LocalSettings
from tasks.formats import keys


def _wait(aws: EmbeddedAws, key: str, timeout: float) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ex in sfn.list_executions(stateMachineArn=aws.resources.state_machine_arn)[
            "executions"
        ]:
            if ex["status"] != "RUNNING":
                desc = sfn.describe_execution(executionArn=ex["executionArn"])
                if key in desc.get("input", ""):
                    return dict(desc)
        time.sleep(0.5)
    raise TimeoutError(f"{key}: no finished execution after {timeout} s")


def run(src: Path, fanout: bool, part_mb: int, state: Path) -> tuple[float, str, str]:
    size = src.stat().st_size
    settings = LocalSettings(
        port=0,
        prefix="bench-fanout" if fanout else "bench-batch",  # one process, two stacks
        state_dir=state,
        persist=False,
        fanout_threshold_bytes=1 if fanout else size + 1,
        fanout_part_bytes=part_mb << 20,
    )
    key = f"bench/{'fanout' if fanout else 'batch'}.csv"
    with EmbeddedAws(settings) as aws:
        s3 = aws.client("s3")
        start = time.perf_counter()
        s3.upload_file(str(src), aws.resources.staging_bucket, key)
        desc = _wait(aws, key, 3600)
        took = time.perf_counter() - start
        if desc["status"] != "SUCCEEDED":
            raise SystemExit(f"{key}: {desc['status']} {desc.get('error')} {desc.get('cause')}")
        digest = hashlib.sha256()
        body = s3.get_object(Bucket=aws.resources.output_bucket, Key=keys.output_key(key, "jsonl"))
        for chunk in iter(lambda: body["Body"].read(8 << 20), b""):
            digest.update(chunk)
        return took, "fanout" if fanout else "batch", digest.hexdigest()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mb", type=int, default=2000)
    p.add_argument("--part-mb", type=int, default=256)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/chute-fanout"))
    args = p.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    src = args.workdir / f"gen-{args.size_mb}.csv"
    if not src.exists():
        generate(src, args.size_mb)
    results = []
    for fanout in (True, False):
        with tempfile.TemporaryDirectory(dir=args.workdir) as state:
            results.append(run(src, fanout, args.part_mb, Path(state)))
    size_mb = src.stat().st_size / 1e6
    print(f"file {size_mb:.0f} MB, parts of {args.part_mb} MiB")
    for took, route, digest in results:
        print(f"{route:7} {took:7.1f} s  {size_mb / took:6.1f} MB/s  jsonl sha256 {digest[:16]}")
    print("same JSON Lines:", results[0][2] == results[1][2])


if __name__ == "__main__":
    main()
