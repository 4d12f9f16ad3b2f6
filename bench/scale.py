"""Scale-up and fan-out figures (issue 24): throughput per core on 1 and 2 cores, the cut
planner's cost, the fan-out's per-part conversion against the whole file.

    PYTHONPATH=. .venv/bin/python bench/scale.py [--size-mb 1000] [--repeat 3] [--part-mb 64]
                                                 [--markdown bench/results.md]

- per core: `chute convert` pinned with CPU affinity to 1 core and to 2 (the engine takes its
  thread count from affinity and the cgroup quota: tasks/cores.py), text JSON Lines and typed
  Parquet, on the generated file (bench/generate.py) — MB/s of input, and MB/s per core.
- planner: tasks.fanout.cuts.plan over the same file on disk for several part sizes (windows
  read, seconds): what the PlanParts step costs per GB.
- parts: the file cut by the planner and each part converted alone (header + its byte range,
  `chute convert` on 1 core) against the whole file on 1 core: the fan-out's overhead per part.

Whole processes, page cache warm, as bench/run.py measures them. Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from bench.generate import generate
from bench.run import measure
from tasks.fanout import cuts

BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"


def _chute(args: argparse.Namespace) -> str:
    return str(Path(sys.executable).parent / "chute")


def _pinned(cpus: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *argv]


def per_core(args: argparse.Namespace, src: Path, work: Path) -> list[str]:
    rows = []
    size_mb = src.stat().st_size / 1e6
    for case, extra in (
        ("text JSON Lines", ["--to", "jsonl", "--text"]),
        ("typed Parquet", ["--to", "parquet"]),
    ):
        walls: dict[int, float] = {}
        for cores, cpus in ((1, "0"), (2, "0,1")):
            samples = []
            for i in range(args.repeat):
                dst = work / f"out-{cores}.bin"
                argv = _pinned(cpus, [_chute(args), "convert", str(src), str(dst), *extra])
                sample = measure(argv, work, work / f"log-{cores}-{i}", 3600)
                if sample.exit_code != 0:
                    raise SystemExit(f"{' '.join(argv)} failed: see {work}")
                samples.append(sample.wall_s)
            walls[cores] = min(samples)
        one, two = walls[1], walls[2]
        rows.append(
            f"| {case} | {one:.2f} s | {size_mb / one:.0f} | {two:.2f} s | {size_mb / two:.0f} "
            f"| {size_mb / two / 2:.0f} | {one / two:.2f}x |"
        )
    return rows


def planner(src: Path, part_mbs: list[int]) -> list[str]:
    data_start = src.open("rb").readline().__len__()
    header = src.open("rb").readline().decode()
    dialect = cuts.Dialect(b",", b'"', len(header.split(",")))
    size = src.stat().st_size
    rows = []
    with src.open("rb") as f:
        for part_mb in part_mbs:
            read_bytes = 0

            def read(a: int, b: int) -> bytes:
                nonlocal read_bytes
                f.seek(a)
                data = f.read(b - a)
                read_bytes += len(data)
                return data

            start = time.perf_counter()
            parts = cuts.plan(size, data_start, part_mb << 20, read, dialect)
            took = time.perf_counter() - start
            rows.append(
                f"| {part_mb} MiB | {len(parts)} | {read_bytes / 1024:.0f} KiB "
                f"| {took * 1000:.1f} ms | {took / (size / 1e9) * 1000:.1f} ms |"
            )
    return rows


def parts_vs_whole(args: argparse.Namespace, src: Path, work: Path) -> list[str]:
    header = src.open("rb").readline()
    dialect = cuts.Dialect(b",", b'"', len(header.split(b",")))
    size = src.stat().st_size
    with src.open("rb") as f:

        def read(a: int, b: int) -> bytes:
            f.seek(a)
            return f.read(b - a)

        parts = cuts.plan(size, len(header), args.part_mb << 20, read, dialect)
        files = []
        for p in parts:
            path = work / f"part-{p.index}.csv"
            f.seek(p.start)
            path.write_bytes(header + f.read(p.end - p.start))
            files.append(path)
    whole = measure(
        _pinned(
            "0", [_chute(args), "convert", str(src), str(work / "whole.parquet"), "--to", "parquet"]
        ),
        work,
        work / "whole",
        3600,
    ).wall_s
    each = [
        measure(
            _pinned(
                "0",
                [
                    _chute(args),
                    "convert",
                    str(p),
                    str(p.with_suffix(".parquet")),
                    "--to",
                    "parquet",
                ],
            ),
            work,
            work / p.stem,
            3600,
        ).wall_s
        for p in files
    ]
    for p in files:
        p.unlink()
    return [
        f"| {len(parts)} x {args.part_mb} MiB | {whole:.2f} s | {sum(each):.2f} s "
        f"| {statistics.median(each):.2f} s | {sum(each) / whole:.2f}x |"
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mb", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--part-mb", type=int, default=64)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/chute-scale"))
    p.add_argument("--markdown", type=Path)
    args = p.parse_args()
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs 2 cores")
    args.workdir.mkdir(parents=True, exist_ok=True)
    src = args.workdir / f"gen-{args.size_mb}.csv"
    if not src.exists():
        generate(src, args.size_mb)
    lines = [
        BEGIN,
        f"Generated file, {src.stat().st_size / 1e6:.0f} MB; best of {args.repeat}; "
        f"`PYTHONPATH=. .venv/bin/python bench/scale.py --size-mb {args.size_mb} --repeat "
        f"{args.repeat} --part-mb {args.part_mb}`",
        "",
        "| case | 1 core | MB/s | 2 cores | MB/s | MB/s per core (2) | speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *per_core(args, src, args.workdir),
        "",
        "| planner: part size | parts | read | time | per GB |",
        "|---|---:|---:|---:|---:|",
        *planner(src, [16, 64, 256]),
        "",
        "| parts (typed Parquet, 1 core each) | whole file | sum of parts | median part "
        "| overhead |",
        "|---|---:|---:|---:|---:|",
        *parts_vs_whole(args, src, args.workdir),
        END,
    ]
    print("\n".join(lines))
    if args.markdown:
        text = args.markdown.read_text()
        if BEGIN in text:
            text = text[: text.index(BEGIN)] + "\n".join(lines) + text[text.index(END) + len(END) :]
        else:
            text += (
                "\n## Huge files: per core and the fan-out's pieces (issue 24)\n\n"
                + "\n".join(lines)
                + "\n"
            )
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
