"""Benchmark of the native conversion core (issue 15): chute against polars doing the same work,
in the same invocation, on the same generated file.

    .venv/bin/python bench/native.py [--sizes 100,1000] [--big 10000] [--repeat N]
                                     [--cases text-parquet,text-jsonl,typed-parquet,compressed]
                                     [--workdir DIR] [--markdown bench/results.md]

- text-parquet: `chute convert SRC DST --to parquet`
  vs polars `scan_csv(infer_schema=False).sink_parquet(dst, compression="zstd")`
- text-jsonl: `chute convert SRC DST --to jsonl` vs `scan_csv(infer_schema=False).sink_ndjson`
- typed-parquet: `chute convert SRC DST --to parquet --infer`
  vs `scan_csv().sink_parquet(zstd)` (polars' own inference)
- compressed: `chute convert SRC.gz` and `SRC.zst` to Parquet, against chute on the plain file

Prints, per case and size: wall seconds, speed ratio (polars seconds ÷ chute seconds: above 1,
chute is faster), peak RSS of both, and the Parquet sizes. ``--big`` adds one run of chute's text
mode to Parquet on a file that size (the 1 GB file repeated: the RSS-stays-flat point).
Wall time and peak RSS are measured as in run.py (whole child process, page cache warm,
``measure``). Not a test: `make test` never runs it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import zstandard

from bench.run import (
    CONTENDER_SCRIPTS,
    MIB,
    Input,
    Sample,
    count_output_rows,
    ensure_gzip,
    machine_info,
    measure,
    prepare_inputs,
    wait_for_quiet,
    warm,
)

CASES = ("text-parquet", "text-jsonl", "typed-parquet", "compressed")
BEGIN, END = "<!-- native:begin -->", "<!-- native:end -->"


@dataclass
class Run:
    case: str
    contender: str
    size_mb: int
    input_kind: str
    sample: Sample
    rows_ok: bool
    output_mib: float


def ensure_zstd(plain: Input) -> Input:
    path = plain.path.with_name(plain.path.name + ".zst")
    if not path.exists() or path.stat().st_mtime < plain.path.stat().st_mtime:
        print(f"compressing {path} (zstd level 3) ...", flush=True)
        tmp = path.with_name(path.name + ".tmp")
        with plain.path.open("rb") as source, tmp.open("wb") as raw:
            zstandard.ZstdCompressor(level=3).copy_stream(source, raw)
        tmp.replace(path)
    size = path.stat().st_size
    return Input(plain.size_mb, "zstd", path, plain.rows, plain.csv_bytes, size)


def ensure_big(plain: Input, size_mb: int) -> Input:
    """``plain`` repeated (header once) up to about ``size_mb``: generating is too slow."""
    times = max(1, round(size_mb / plain.size_mb))
    path = plain.path.with_name(f"{plain.size_mb * times}mb-repeated.csv")
    body = plain.csv_bytes - len(plain.path.open("rb").readline())
    expected = plain.csv_bytes + (times - 1) * body
    if not path.exists() or path.stat().st_size != expected:
        print(f"writing {path} ({times} x {plain.path.name}) ...", flush=True)
        with path.open("wb") as out:
            for i in range(times):
                with plain.path.open("rb") as source:
                    if i:
                        source.readline()
                    shutil.copyfileobj(source, out, 16 * MIB)
    return Input(plain.size_mb * times, "none", path, plain.rows * times, expected, expected)


def commands(case: str, contender: str, src: Path, dst: Path, chute: Path) -> list[str]:
    target = "jsonl" if case.endswith("jsonl") else "parquet"
    if contender == "chute":
        argv = [str(chute), "convert", str(src), str(dst), "--to", target]
        return [*argv, "--infer"] if case.startswith("typed") else argv
    script = str(CONTENDER_SCRIPTS / "run_polars.py")
    mode = "inferred" if case.startswith("typed") else "text"
    return [sys.executable, script, str(src), str(dst), target, mode]


def run_once(
    case: str, contender: str, source: Input, workdir: Path, chute: Path, repeat: int, wait: float
) -> Run:
    target = "jsonl" if case.endswith("jsonl") else "parquet"
    out_dir = workdir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"{case}-{contender}-{source.size_mb}-{source.compression}"
    dst = out_dir / f"{name}.{target}"
    best: Sample | None = None
    rows_ok, size = False, 0.0
    for _ in range(repeat):
        dst.unlink(missing_ok=True)
        subprocess.run(["sync"], check=False)
        warm(source.path)
        wait_for_quiet(wait)
        sample = measure(
            commands(case, contender, source.path, dst, chute), out_dir, out_dir / name, 7200
        )
        rows_ok = sample.exit_code == 0 and count_output_rows(dst, target) == source.rows
        size = dst.stat().st_size / MIB if dst.exists() else 0.0
        if best is None or (rows_ok and sample.wall_s < best.wall_s):
            best = sample
        dst.unlink(missing_ok=True)
    assert best is not None
    print(
        f"{case:14} {contender:6} {source.size_mb:>6} MB {source.compression:5}"
        f" {best.wall_s:7.2f} s {best.peak_rss_mib:6.0f} MiB {size:8.1f} MiB out"
        f"{'' if rows_ok else '  ⚠ rows/exit ' + str(best.exit_code)}",
        flush=True,
    )
    return Run(case, contender, source.size_mb, source.compression, best, rows_ok, size)


def table(runs: Sequence[Run]) -> str:
    by = {(r.case, r.contender, r.size_mb, r.input_kind): r for r in runs}
    lines = [
        "| case | size | chute s | polars s | speed ratio | chute CPU s | polars CPU s"
        " | chute RSS MiB | polars RSS MiB | chute out MiB | polars out MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        if r.contender != "chute" or r.case == "compressed":
            continue
        peer = by.get((r.case, "polars", r.size_mb, r.input_kind))
        ratio = f"{peer.sample.wall_s / r.sample.wall_s:.2f}x" if peer else "-"
        lines.append(
            f"| {r.case} | {r.size_mb} MB | {r.sample.wall_s:.2f} | "
            f"{peer.sample.wall_s if peer else float('nan'):.2f} | {ratio} | "
            f"{r.sample.cpu_s:.2f} | {peer.sample.cpu_s if peer else float('nan'):.2f} | "
            f"{r.sample.peak_rss_mib:.0f} | {peer.sample.peak_rss_mib if peer else 0:.0f} | "
            f"{r.output_mib:.1f} | {peer.output_mib if peer else 0:.1f} |"
        )
    compressed = [r for r in runs if r.case == "compressed"]
    if compressed:
        lines += [
            "",
            "| compressed input (chute) | size | seconds | plain seconds | ÷ plain speed"
            " | RSS MiB |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in compressed:
            plain = by.get(("text-parquet", "chute", r.size_mb, "none"))
            ratio = f"{plain.sample.wall_s / r.sample.wall_s:.2f}x" if plain else "-"
            lines.append(
                f"| {r.input_kind} → Parquet | {r.size_mb} MB | {r.sample.wall_s:.2f} | "
                f"{plain.sample.wall_s if plain else float('nan'):.2f} | {ratio} | "
                f"{r.sample.peak_rss_mib:.0f} |"
            )
    bad = [r for r in runs if not r.rows_ok]
    if bad:
        lines.append("")
        lines += [f"⚠ {r.case} {r.contender} {r.size_mb} MB: wrong rows or exit" for r in bad]
    return "\n".join(lines)


def write_markdown(path: Path, text: str) -> None:
    current = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        current = head + block + rest.split(END, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(current)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--sizes", default="100,1000")
    p.add_argument("--big", type=int, default=0, help="MB of the one-off RSS point (0: none)")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--quiet-wait", type=float, default=30.0)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/chute-bench"))
    p.add_argument("--chute-bin", type=Path, default=Path(sys.executable).parent / "chute")
    p.add_argument("--markdown", type=Path, help="replace the native section of this file")
    p.add_argument("--json", type=Path, help="raw samples")
    p.add_argument("--from-json", type=Path, help="only render the tables of an earlier --json")
    args = p.parse_args(argv)
    if args.from_json:
        runs = [
            Run(**(r | {"sample": Sample(**r["sample"])}))
            for r in json.loads(args.from_json.read_text())["runs"]
        ]
        print(table(runs))
        if args.markdown:
            write_markdown(args.markdown, table(runs))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    cases = [c for c in args.cases.split(",") if c]
    runs: list[Run] = []
    for plain in prepare_inputs(args.workdir, sizes, ["none"]):
        for case in cases:
            if case == "compressed":
                for packed in (ensure_gzip(plain), ensure_zstd(plain)):
                    runs.append(
                        run_once(
                            case,
                            "chute",
                            packed,
                            args.workdir,
                            args.chute_bin,
                            args.repeat,
                            args.quiet_wait,
                        )
                    )
                continue
            for contender in ("chute", "polars"):
                runs.append(
                    run_once(
                        case,
                        contender,
                        plain,
                        args.workdir,
                        args.chute_bin,
                        args.repeat,
                        args.quiet_wait,
                    )
                )
    if args.big:
        base = prepare_inputs(args.workdir, [1000], ["none"])[0]
        big = ensure_big(base, args.big)
        runs.append(
            run_once("text-parquet", "chute", big, args.workdir, args.chute_bin, 1, args.quiet_wait)
        )
        big.path.unlink()
    text = table(runs)
    print(text)
    if args.markdown:
        write_markdown(args.markdown, text)
    if args.json:
        payload = {
            "machine": machine_info(),
            "runs": [r.__dict__ | {"sample": r.sample.__dict__} for r in runs],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if all(r.rows_ok for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
