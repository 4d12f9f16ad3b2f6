"""Where the embedded endpoint's CPU goes per small file (issue 12): the runtime in this
process, N small files through the real path, every thread profiled with yappi (CPU clock).

    .venv/bin/python bench/profile_endpoint.py [--files 60] [--top 40] [--save FILE.pstat]

Prints the functions with the most cumulative and own CPU time (pstats format). The worker
processes are not profiled (their CPU is in bench/throughput.py's "CPU per file (tree)").
Profiling slows everything ~4x: read the shares, not the seconds.
"""

from __future__ import annotations

import argparse
import pstats
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import yappi  # noqa: E402

from bench.load import embedded_runtime, small_csv  # noqa: E402
from bench.throughput import Completions  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--save", type=Path)
    args = parser.parse_args(argv)
    with embedded_runtime(1 << 20) as aws:
        completions = Completions(aws.endpoint_url, aws.resources)
        s3 = aws.client("s3")

        def run(prefix: str, count: int) -> None:
            keys = [f"{prefix}/{i:05d}.csv" for i in range(count)]
            with ThreadPoolExecutor(8) as pool:
                list(
                    pool.map(
                        lambda k: s3.put_object(
                            Bucket=aws.resources.staging_bucket, Key=k, Body=small_csv(1)
                        ),
                        keys,
                    )
                )
            if not completions.wait(keys, timeout=1800):
                raise SystemExit("files did not finish")

        run("warm-up", 5)
        yappi.set_clock_type("cpu")
        yappi.start()
        began = time.monotonic()
        run("profiled", args.files)
        wall = time.monotonic() - began
        yappi.stop()
        completions.stop()
    path = args.save or Path(tempfile.mkstemp(suffix=".pstat")[1])
    yappi.get_func_stats().save(str(path), type="pstat")
    stats = pstats.Stats(str(path))
    print(f"{args.files} files in {wall:.1f} s (profiled); CPU {stats.total_tt:.1f} s")  # type: ignore[attr-defined]
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
