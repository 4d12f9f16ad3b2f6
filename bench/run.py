"""Benchmark: chute vs polars, DuckDB, pyarrow and the standard library;
CSV (optionally gzip) -> Parquet (zstd) and JSON Lines.

    .venv/bin/python bench/run.py [--sizes 10,100,1000] [--targets parquet,jsonl]
                                  [--contenders polars,duckdb,pyarrow,stdlib,chute]
                                  [--compressions none,gzip] [--repeat N] [--workdir DIR]
                                  [--merge] [--quiet-wait S] [--prepare] [--quick]

Each run is its own process; the harness measures its wall time and peak RSS (see README.md).
Not a test: `make test` never runs it.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
GENERATOR = BENCH / "generate.py"
CONTENDER_SCRIPTS = BENCH / "contenders"

MIB = 1 << 20
PEERS = ("polars", "duckdb", "pyarrow", "stdlib")
CONTENDERS = (*PEERS, "chute")
TARGETS = ("parquet", "jsonl")
COMPRESSIONS = ("none", "gzip")
EXTENSIONS = {"parquet": "parquet", "jsonl": "jsonl"}
NOT_APPLICABLE = {("stdlib", "parquet"): "the standard library has no Parquet writer"}
GZIP_LEVEL = 6  # gzip's own default
# A child's ru_maxrss starts at the harness's peak RSS (the kernel records the spawning address
# space's high-water mark at exec). Within this margin of that floor, wait4 says nothing.
FLOOR_MARGIN_MIB = 2.0
POLL_S = 0.01
# The machine may be shared: before each repetition wait (up to --quiet-wait) until the rest of
# it uses less than QUIET_CORES; a repetition during which the rest used more than
# CONTENDED_CORES on average is "contended": it is redone (at most `repeat` extra times) and only
# counts when no clean repetition exists; the cell is then marked noisy.
QUIET_CORES = 0.1
CONTENDED_CORES = 0.25


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Input:
    size_mb: int
    compression: str  # "none" | "gzip"
    path: Path
    rows: int  # data rows (CSV records, not lines: quoted fields contain newlines)
    csv_bytes: int  # uncompressed size: the basis of every MB/s figure
    file_bytes: int

    @property
    def label(self) -> str:
        return size_label(self.size_mb) + (" gz" if self.compression == "gzip" else "")


def size_label(size_mb: int) -> str:
    return f"{size_mb // 1000} GB" if size_mb >= 1000 and size_mb % 1000 == 0 else f"{size_mb} MB"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def ensure_plain(data_dir: Path, size_mb: int, generator_sha: str) -> Input:
    csv_path = data_dir / f"{size_mb}mb.csv"
    sidecar = csv_path.with_name(csv_path.name + ".json")
    meta = read_sidecar(sidecar)
    fresh = (
        meta is not None
        and meta.get("generator_sha256") == generator_sha
        and csv_path.exists()
        and csv_path.stat().st_size == meta.get("bytes")
    )
    if not fresh:
        print(f"generating {csv_path} ({size_mb} MB) ...", flush=True)
        tmp = csv_path.with_name(csv_path.name + ".tmp")
        out = subprocess.run(
            [sys.executable, str(GENERATOR), str(tmp), str(size_mb)],
            check=True,
            capture_output=True,
            text=True,
        )
        tmp.replace(csv_path)
        meta = {
            "size_mb": size_mb,
            "rows": int(out.stdout.strip()),
            "bytes": csv_path.stat().st_size,
            "generator_sha256": generator_sha,
        }
        sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    assert meta is not None
    return Input(size_mb, "none", csv_path, meta["rows"], meta["bytes"], meta["bytes"])


def ensure_gzip(plain: Input) -> Input:
    """The gzip variant is the plain file compressed: same content, so speeds compare."""
    gz_path = plain.path.with_name(plain.path.name + ".gz")
    sidecar = gz_path.with_name(gz_path.name + ".json")
    source_meta = read_sidecar(plain.path.with_name(plain.path.name + ".json"))
    meta = read_sidecar(sidecar)
    fresh = (
        meta is not None
        and source_meta is not None
        and meta.get("source") == source_meta
        and gz_path.exists()
        and gz_path.stat().st_size == meta.get("bytes")
    )
    if not fresh:
        print(f"compressing {gz_path} (level {GZIP_LEVEL}) ...", flush=True)
        tmp = gz_path.with_name(gz_path.name + ".tmp")
        with (
            plain.path.open("rb") as source,
            tmp.open("wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as out,
        ):
            shutil.copyfileobj(source, out, MIB)
        tmp.replace(gz_path)
        meta = {"source": source_meta, "bytes": gz_path.stat().st_size, "level": GZIP_LEVEL}
        sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    assert meta is not None
    return Input(plain.size_mb, "gzip", gz_path, plain.rows, plain.csv_bytes, meta["bytes"])


def prepare_inputs(workdir: Path, sizes: Sequence[int], compressions: Sequence[str]) -> list[Input]:
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    generator_sha = sha256(GENERATOR)
    inputs = []
    for size_mb in sizes:
        plain = ensure_plain(data_dir, size_mb, generator_sha)
        if "none" in compressions:
            inputs.append(plain)
        if "gzip" in compressions:
            inputs.append(ensure_gzip(plain))
    return inputs


def warm(path: Path) -> None:
    """Read the file once so that it sits in the page cache before the timed run."""
    buf = bytearray(4 * MIB)
    with path.open("rb", buffering=0) as f:
        while f.readinto(buf):
            pass


# --------------------------------------------------------------------------- measuring


@dataclass
class Sample:
    wall_s: float
    exit_code: int
    peak_rss_mib: float  # the figure reported; see rss_source
    rss_source: str  # "wait4" (exact) or "VmHWM poll" (child stayed under the harness floor)
    wait4_maxrss_mib: float
    polled_vmhwm_mib: float
    harness_floor_mib: float
    # Highest sampled RssAnon / RssFile: RSS counts mapped file pages too (an input read
    # through mmap is page cache, reclaimable); these two tell heap from mapped file.
    polled_rss_anon_mib: float
    polled_rss_file_mib: float
    cpu_s: float  # user + system time of the child
    load_avg_1m: float  # of the machine when the run started
    other_cpu_s: float  # CPU time the rest of the machine used meanwhile: it skews wall times
    timed_out: bool = False
    contended: bool = False
    quiet_wait_s: float = 0.0  # waited for the machine to be quiet before this repetition


def self_maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def machine_busy_s() -> float:
    """CPU time spent by the whole machine so far (all cores, idle and iowait excluded)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wait_for_quiet(max_wait_s: float) -> float:
    """Wait until the rest of the machine uses under QUIET_CORES (0.5 s windows), at most
    max_wait_s; the time waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait_s:
        busy, own = machine_busy_s(), self_cpu_s()
        time.sleep(0.5)
        if machine_busy_s() - busy - (self_cpu_s() - own) < QUIET_CORES * 0.5:
            break
    return time.perf_counter() - start


STATUS_FIELDS = (b"VmHWM:", b"RssAnon:", b"RssFile:")


def read_status_mib(pid: int) -> tuple[float, ...]:
    """VmHWM, RssAnon, RssFile of a process, MiB (zeros once it has gone)."""
    values = dict.fromkeys(STATUS_FIELDS, 0.0)
    try:
        with Path(f"/proc/{pid}/status").open("rb") as f:
            for line in f:
                name = line.split(maxsplit=1)[0] if line.strip() else b""
                if name in values:
                    values[name] = int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return tuple(values[name] for name in STATUS_FIELDS)


def measure(argv: Sequence[str], cwd: Path, log_prefix: Path, timeout_s: float) -> Sample:
    """Run argv as a child process; its wall time and peak RSS.

    Peak RSS: ru_maxrss of the child from os.wait4 (its largest resident set, all threads, and
    that of any child it waited for). The kernel seeds it with the spawning process's peak at
    exec, so the harness stays small (no data libraries imported) and records its own peak as a
    floor; when the child's ru_maxrss does not exceed that floor, the child's own VmHWM, polled
    every 10 ms from /proc, is reported instead.
    """
    floor = self_maxrss_mib()
    load = os.getloadavg()[0]
    busy_before, own_before = machine_busy_s(), self_cpu_s()
    reaped: dict[str, Any] = {}
    with (
        log_prefix.with_suffix(".stdout").open("wb") as out,
        log_prefix.with_suffix(".stderr").open("wb") as err,
    ):
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        except OSError as exc:  # e.g. no chute executable: a failed run like any other
            err.write(f"cannot start {argv[0]}: {exc}\n".encode())
            return Sample(0.0, 127, 0.0, "none", 0.0, 0.0, floor, 0.0, 0.0, 0.0, load, 0.0)

    def reap() -> None:
        _, status, usage = os.wait4(proc.pid, 0)
        reaped["end"] = time.perf_counter()
        reaped["status"] = status
        reaped["usage"] = usage

    waiter = threading.Thread(target=reap, daemon=True)
    waiter.start()
    hwm = anon = mapped = 0.0
    timed_out = False
    while waiter.is_alive():
        status = read_status_mib(proc.pid)
        hwm, anon, mapped = max(hwm, status[0]), max(anon, status[1]), max(mapped, status[2])
        if not timed_out and time.perf_counter() - start > timeout_s:
            timed_out = True
            os.kill(proc.pid, signal.SIGKILL)
        waiter.join(POLL_S)
    proc.returncode = os.waitstatus_to_exitcode(reaped["status"])  # reaped here, not by Popen
    usage = reaped["usage"]
    cpu = usage.ru_utime + usage.ru_stime
    other = machine_busy_s() - busy_before - cpu - (self_cpu_s() - own_before)
    maxrss = usage.ru_maxrss / 1024
    exact = maxrss > floor + FLOOR_MARGIN_MIB
    return Sample(
        wall_s=reaped["end"] - start,
        exit_code=proc.returncode,
        peak_rss_mib=maxrss if exact else hwm,
        rss_source="wait4" if exact else "VmHWM poll",
        wait4_maxrss_mib=maxrss,
        polled_vmhwm_mib=hwm,
        harness_floor_mib=floor,
        polled_rss_anon_mib=anon,
        polled_rss_file_mib=mapped,
        cpu_s=cpu,
        load_avg_1m=load,
        other_cpu_s=max(other, 0.0),
        timed_out=timed_out,
    )


def last_stderr_line(path: Path) -> str:
    """The last line that says something (rich/typer frame their errors in box drawing)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    for line in reversed(text.splitlines()):
        stripped = line.strip(" │╭╮╰╯─┃━┏┓┗┛\t")
        if any(c.isalnum() for c in stripped):
            return stripped[:300]
    return ""


def count_output_rows(path: Path, target: str) -> int | None:
    if not path.exists():
        return None
    if target == "jsonl":
        return count_lines(path)
    probe = subprocess.run(  # pyarrow in a child: the harness stays small (see measure)
        [
            sys.executable,
            "-c",
            "import sys, pyarrow.parquet as pq; print(pq.read_metadata(sys.argv[1]).num_rows)",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    return int(probe.stdout) if probe.returncode == 0 else None


def count_lines(path: Path) -> int:
    buf = bytearray(4 * MIB)
    view = memoryview(buf)
    lines = 0
    last = b"\n"
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            lines += buf.count(b"\n", 0, n)
            last = bytes(view[n - 1 : n])
    return lines + (last != b"\n")


# --------------------------------------------------------------------------- contenders


def command(contender: str, src: Path, dst: Path, target: str, chute_bin: Path) -> list[str]:
    if contender == "chute":
        return [str(chute_bin), "convert", str(src), str(dst), "--to", target]
    script = CONTENDER_SCRIPTS / f"run_{contender}.py"
    return [sys.executable, str(script), str(src), str(dst), target]


@dataclass
class Cell:
    contender: str
    target: str
    size_mb: int
    compression: str
    status: str  # ok | failed | n/a | timeout
    input_bytes: int = 0
    csv_bytes: int = 0
    rows_expected: int = 0
    rows_out: int | None = None
    rows_ok: bool | None = None
    output_bytes: int | None = None
    best_wall_s: float | None = None
    mb_per_s: float | None = None  # uncompressed CSV MiB per second of best wall time
    max_peak_rss_mib: float | None = None
    noisy: bool = False  # every repetition was contended (see CONTENDED_CORES)
    exit_code: int | None = None
    error: str = ""
    command: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    timestamp: str = ""

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.contender, self.target, self.size_mb, self.compression)


def run_cell(
    contender: str,
    target: str,
    inp: Input,
    repeat: int,
    out_dir: Path,
    chute_bin: Path,
    timeout_s: float,
    quiet_wait_s: float,
) -> Cell:
    cell = Cell(
        contender,
        target,
        inp.size_mb,
        inp.compression,
        status="ok",
        input_bytes=inp.file_bytes,
        csv_bytes=inp.csv_bytes,
        rows_expected=inp.rows,
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    reason = NOT_APPLICABLE.get((contender, target))
    if reason:
        cell.status, cell.error = "n/a", reason
        return cell
    tag = f"{contender}-{inp.size_mb}mb{'-gz' if inp.compression == 'gzip' else ''}-{target}"
    dst = out_dir / f"{tag}.{EXTENSIONS[target]}"
    cell.command = command(contender, inp.path, dst, target, chute_bin)
    for old_log in out_dir.glob(f"{tag}-*.std*"):  # logs of an earlier invocation
        old_log.unlink()
    clean = rep = 0
    while clean < repeat and rep < 2 * repeat:
        rep += 1
        dst.unlink(missing_ok=True)
        os.sync()  # earlier runs' output written back now, not during this one
        warm(inp.path)
        waited = wait_for_quiet(quiet_wait_s)
        sample = measure(cell.command, out_dir, out_dir / f"{tag}-{rep}", timeout_s)
        sample.quiet_wait_s = waited
        sample.contended = sample.other_cpu_s > CONTENDED_CORES * sample.wall_s
        clean += not sample.contended
        cell.samples.append(asdict(sample))
        cell.exit_code = sample.exit_code
        head = f"  {target:<7} {contender:<8} {inp.label:<10} rep {rep}"
        if sample.timed_out or sample.exit_code != 0:
            cell.status = "timeout" if sample.timed_out else "failed"
            cell.error = last_stderr_line(out_dir / f"{tag}-{rep}.stderr")
            print(
                f"{head}  {cell.status.upper()} exit {sample.exit_code}: {cell.error}", flush=True
            )
            break
        rows = count_output_rows(dst, target)
        cell.rows_out = rows
        cell.rows_ok = rows == inp.rows
        cell.output_bytes = dst.stat().st_size if dst.exists() else None
        mbps = inp.csv_bytes / MIB / sample.wall_s
        check = "rows ok" if cell.rows_ok else f"!!! ROWS {rows} != {inp.rows} expected !!!"
        print(
            f"{head}  {sample.wall_s:7.2f} s {mbps:8.1f} MB/s {sample.peak_rss_mib:7.0f} MiB"
            f" (anon {sample.polled_rss_anon_mib:.0f}, file {sample.polled_rss_file_mib:.0f})"
            f"  cpu {sample.cpu_s:5.2f} s  others {sample.other_cpu_s:5.2f} s"
            f"{' CONTENDED' if sample.contended else ''}  {check}",
            flush=True,
        )
        if not cell.rows_ok:
            print(
                f"!!! ROW COUNT MISMATCH: {contender} -> {target} on {inp.path.name}: "
                f"{rows} rows written, {inp.rows} data rows in the input",
                file=sys.stderr,
                flush=True,
            )
    dst.unlink(missing_ok=True)
    ok = [s for s in cell.samples if s["exit_code"] == 0 and not s["timed_out"]]
    if cell.status == "ok" and ok:
        cell.noisy = all(s["contended"] for s in ok)
        timed = ok if cell.noisy else [s for s in ok if not s["contended"]]
        cell.best_wall_s = min(s["wall_s"] for s in timed)
        cell.mb_per_s = inp.csv_bytes / MIB / cell.best_wall_s
        cell.max_peak_rss_mib = max(s["peak_rss_mib"] for s in ok)
    return cell


# --------------------------------------------------------------------------- reporting


def git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return out.stdout.strip()


def proc_field(path: str, name: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    mem_kib = proc_field("/proc/meminfo", "MemTotal").split()  # ["24684092", "kB"]
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "cpu_model": proc_field("/proc/cpuinfo", "model name"),
        "mem_total_gib": round(int(mem_kib[0]) / MIB, 1) if mem_kib else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        # Read from the installed metadata, not by import: the harness stays small.
        "versions": {d: version(d) for d in ("polars", "pyarrow", "duckdb", "chute")},
        "chute_git": git("rev-parse", "--short", "HEAD"),
        "chute_git_dirty": bool(git("status", "--porcelain")),
    }


def fmt_speed(cell: Cell | None) -> str:
    if cell is None:
        return ""
    if cell.status != "ok":
        return cell.status if cell.status == "n/a" else f"{cell.status} (exit {cell.exit_code})"
    assert cell.mb_per_s is not None
    noisy = " (noisy)" if cell.noisy else ""
    return f"{cell.mb_per_s:.1f}{noisy}" + ("" if cell.rows_ok else " ⚠ rows")


def fmt_rss(cell: Cell | None) -> str:
    if cell is None or cell.status != "ok" or cell.max_peak_rss_mib is None:
        return ""
    return f"{cell.max_peak_rss_mib:.0f}"


def table_rows(
    cells: Sequence[Cell], target: str, compression: str, sizes: Sequence[int]
) -> tuple[list[str], list[list[str]]]:
    index = {c.key: c for c in cells}
    header = ["contender"]
    for size in sizes:
        header += [f"{size_label(size)} MB/s", f"{size_label(size)} RSS MiB"]
    present = [n for n in CONTENDERS if any(k[0] == n for k in index)]
    rows = []
    for name in present:
        row = [name]
        for size in sizes:
            cell = index.get((name, target, size, compression))
            row += [fmt_speed(cell), fmt_rss(cell)]
        rows.append(row)
    if "chute" in present:
        ratio = ["chute ÷ fastest peer"]
        for size in sizes:
            chute = index.get(("chute", target, size, compression))
            peers = [
                c
                for n in PEERS
                if (c := index.get((n, target, size, compression))) and c.mb_per_s is not None
            ]
            if chute is None or chute.mb_per_s is None or not peers:
                ratio += ["", ""]
                continue
            best = max(peers, key=lambda c: c.mb_per_s or 0.0)
            assert best.mb_per_s and best.max_peak_rss_mib and chute.max_peak_rss_mib
            ratio += [
                f"{chute.mb_per_s / best.mb_per_s:.2f}x ({best.contender})",
                f"{chute.max_peak_rss_mib / best.max_peak_rss_mib:.2f}x",
            ]
        rows.append(ratio)
    return header, rows


def groups(cells: Sequence[Cell]) -> list[tuple[str, str, list[int]]]:
    out = []
    for target in TARGETS:
        for compression in COMPRESSIONS:
            sizes = sorted(
                {c.size_mb for c in cells if c.target == target and c.compression == compression}
            )
            if sizes:
                out.append((target, compression, sizes))
    return out


def title(target: str, compression: str) -> str:
    source = "CSV.gz" if compression == "gzip" else "CSV"
    return f"{source} → {'Parquet (zstd)' if target == 'parquet' else 'JSON Lines'}"


def render_text(cells: Sequence[Cell]) -> str:
    parts = []
    for target, compression, sizes in groups(cells):
        header, rows = table_rows(cells, target, compression, sizes)
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = [title(target, compression)]
        for r in [header, *rows]:
            cols = [r[0].ljust(widths[0])] + [
                v.rjust(w) for v, w in zip(r[1:], widths[1:], strict=True)
            ]
            lines.append("  ".join(cols))
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def mismatches(cells: Iterable[Cell]) -> list[Cell]:
    return [c for c in cells if c.status == "ok" and not c.rows_ok]


def render_markdown(cells: Sequence[Cell], machine: dict[str, Any]) -> str:
    v = machine["versions"]
    lines = [
        "<!-- generated by bench/run.py -->",
        f"Machine: {machine['cpu_model'] or 'unknown CPU'}, {machine['cpu_affinity']} CPUs, "
        f"{machine['mem_total_gib']} GiB RAM; Python {machine['python']}, polars {v['polars']}, "
        f"pyarrow {v['pyarrow']}, DuckDB {v['duckdb']}; chute {machine['chute_git']}"
        f"{' (dirty)' if machine['chute_git_dirty'] else ''}; {machine['timestamp']}.",
        "",
        "MB/s: MiB of *uncompressed* CSV per second of wall time of the whole process (start-up "
        "and imports included), best of the repetitions, page cache warm. RSS: peak resident set "
        "of that process, MiB, highest of the repetitions.",
    ]
    for target, compression, sizes in groups(cells):
        header, rows = table_rows(cells, target, compression, sizes)
        lines += ["", f"**{title(target, compression)}**", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    bad = mismatches(cells)
    if bad:
        lines += ["", "Row-count mismatches (⚠):", ""]
        lines += [
            f"- {c.contender} → {c.target}, {size_label(c.size_mb)}"
            f"{' gz' if c.compression == 'gzip' else ''}: {c.rows_out} rows, "
            f"{c.rows_expected} expected"
            for c in bad
        ]
    failed = [c for c in cells if c.status in ("failed", "timeout")]
    if failed:
        lines += ["", "Failures:", ""]
        lines += [
            f"- {c.contender} → {c.target}, {size_label(c.size_mb)}"
            f"{' gz' if c.compression == 'gzip' else ''}: exit {c.exit_code}: {c.error}"
            for c in failed
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def csv_list(value: str, allowed: Sequence[str] | None = None) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if allowed is not None:
        unknown = [v for v in items if v not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {list(allowed)}")
    return items


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sizes", type=lambda s: [int(x) for x in csv_list(s)], default=[10, 100, 1000])
    p.add_argument("--targets", type=lambda s: csv_list(s, TARGETS), default=list(TARGETS))
    p.add_argument("--contenders", type=lambda s: csv_list(s, CONTENDERS), default=list(CONTENDERS))
    p.add_argument(
        "--compressions", type=lambda s: csv_list(s, COMPRESSIONS), default=list(COMPRESSIONS)
    )
    p.add_argument("--repeat", type=int, help="repetitions per run (default 3; 1 from 1000 MB)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/chute-bench"))
    p.add_argument("--results", type=Path, help="JSON (default bench/results.json)")
    p.add_argument("--markdown", type=Path, help="Markdown (default bench/results.md)")
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the runs of the existing results file that this invocation does not redo",
    )
    p.add_argument("--chute-bin", type=Path, default=Path(sys.executable).parent / "chute")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    p.add_argument(
        "--quiet-wait",
        type=float,
        help="seconds to wait at most for other work on the machine to stop before each run "
        "(default 120; 0 with --quick)",
    )
    p.add_argument("--quick", action="store_true", help="10 MB, 1 repetition, results in workdir")
    p.add_argument("--prepare", action="store_true", help="generate the inputs, run nothing")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.repeat = [10], 1
        args.quiet_wait = 0.0 if args.quiet_wait is None else args.quiet_wait
        args.results = args.results or args.workdir / "quick-results.json"
        args.markdown = args.markdown or args.workdir / "quick-results.md"
    args.quiet_wait = 120.0 if args.quiet_wait is None else args.quiet_wait
    args.results = args.results or BENCH / "results.json"
    args.markdown = args.markdown or BENCH / "results.md"
    return args


def load_previous(path: Path) -> tuple[list[Cell], list[dict[str, Any]]]:
    data = read_sidecar(path) or {}
    return [Cell(**c) for c in data.get("runs", [])], list(data.get("inputs", []))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir: Path = args.workdir
    out_dir = workdir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = prepare_inputs(workdir, args.sizes, args.compressions)
    if args.prepare:
        return 0
    before = machine_busy_s()
    time.sleep(1.0)
    busy = machine_busy_s() - before
    if busy > 0.2:
        print(f"warning: the machine is busy ({busy:.1f} CPU-s in 1 s): wall times will be noisy")
    for inp in inputs:
        print(f"input {inp.path}: {inp.file_bytes / MIB:.1f} MiB, {inp.rows} rows", flush=True)

    cells: list[Cell] = []
    for inp in inputs:
        repeat = args.repeat or (3 if inp.size_mb < 1000 else 1)
        for target in args.targets:
            for contender in args.contenders:
                cells.append(
                    run_cell(
                        contender,
                        target,
                        inp,
                        repeat,
                        out_dir,
                        args.chute_bin,
                        args.timeout,
                        args.quiet_wait,
                    )
                )

    input_records = [{**asdict(i), "path": str(i.path)} for i in inputs]
    if args.merge:
        old_cells, old_inputs = load_previous(args.results)
        fresh = {c.key for c in cells}
        cells = [c for c in old_cells if c.key not in fresh] + cells
        paths = {r["path"] for r in input_records}
        input_records = [r for r in old_inputs if r.get("path") not in paths] + input_records
    cells.sort(
        key=lambda c: (
            TARGETS.index(c.target),
            COMPRESSIONS.index(c.compression),
            c.size_mb,
            CONTENDERS.index(c.contender),
        )
    )
    machine = machine_info()
    machine["harness_peak_rss_mib"] = self_maxrss_mib()
    report = {
        "machine": machine,
        "config": {
            "workdir": str(workdir),
            "repeat": args.repeat,
            "gzip_level": GZIP_LEVEL,
            "mb": "MiB (2**20 bytes) of uncompressed CSV",
            "wall_time": "whole child process, best of repetitions, page cache warm",
            "peak_rss": "child ru_maxrss from wait4 (or polled VmHWM under the harness floor)",
        },
        "inputs": sorted(input_records, key=lambda r: str(r["path"])),
        "runs": [asdict(c) for c in cells],
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    markdown = render_markdown(cells, machine)
    # keep the sections other tools write (bench/load.py's "## Load (issue 10)")
    previous = args.markdown.read_text() if args.markdown.exists() else ""
    kept = previous.find("\n## Load (issue 10)")
    if kept >= 0:
        markdown = markdown.rstrip("\n") + "\n" + previous[kept:]
    args.markdown.write_text(markdown)

    print()
    print(render_text(cells))
    print(f"\nraw results: {args.results}\nmarkdown:    {args.markdown}")
    bad = mismatches(cells)
    for c in bad:
        print(
            f"!!! ROW COUNT MISMATCH: {c.contender} -> {c.target}, {size_label(c.size_mb)} "
            f"{c.compression}: {c.rows_out} rows, {c.rows_expected} expected",
            file=sys.stderr,
        )
    chute_bad = [c for c in cells if c.contender == "chute" and (c.status != "ok" or not c.rows_ok)]
    return 1 if chute_bad else 0


if __name__ == "__main__":
    sys.exit(main())
