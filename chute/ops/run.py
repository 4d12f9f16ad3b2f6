"""``chute run``: take local files through the pipeline and report one row per file."""

from __future__ import annotations

import fnmatch
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chute.ops.executions import ExecutionView, list_arns, view
from tasks import names
from tasks.formats import keys
from tasks.formats.keys import matches_suffix
from tasks.workflow import Outcome

IGNORED = "IGNORED"


class RunError(Exception):
    """Bad input to ``chute run`` (missing or unreadable paths, clashing keys)."""


@dataclass(frozen=True)
class LocalFile:
    path: Path
    key: str


@dataclass(frozen=True)
class Uploaded:
    file: LocalFile
    etag: str


@dataclass
class FileResult:
    uploaded: Uploaded
    execution: ExecutionView | None = None
    downloaded: list[Path] = field(default_factory=list)
    expected_quarantine: bool = False
    ignored: bool = False
    """Not a processed extension: the pipeline's trigger would skip it (not uploaded)."""
    report: Path | None = None
    """A quarantined file's report (``<key>.error.json``), downloaded."""

    @property
    def key(self) -> str:
        return self.uploaded.file.key

    @property
    def outcome(self) -> str:
        if self.ignored:
            return IGNORED
        return self.execution.outcome if self.execution else "WAITING"

    @property
    def reason(self) -> str | None:
        """Why a file was quarantined or failed: the error's message (the report's text)."""
        ex = self.execution
        if ex is None or not ex.cause:
            return None
        try:
            cause = json.loads(ex.cause)
        except ValueError:
            return ex.cause
        if isinstance(cause, dict):
            return str(cause.get("errorMessage") or cause.get("message") or ex.cause)
        return ex.cause

    @property
    def ok(self) -> bool:
        if self.ignored:
            return True
        if self.expected_quarantine:
            return self.outcome == Outcome.QUARANTINED
        return self.outcome == Outcome.SUCCEEDED


def collect_files(paths: Iterable[str | Path]) -> list[LocalFile]:
    """Files to upload with their staging keys: a file keeps its name, a directory's files keep
    their path below the directory's parent. Hidden files are skipped."""
    files: list[LocalFile] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise RunError(f"{raw}: no such file or directory")
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise RunError(f"{raw}: directory has no files")
            files.extend(LocalFile(p, p.relative_to(path.parent).as_posix()) for p in found)
        elif path.is_file():
            files.append(LocalFile(path, path.name))
        else:
            raise RunError(f"{raw}: not a regular file or directory")
    for item in files:
        if not os.access(item.path, os.R_OK):
            raise RunError(f"{item.path}: permission denied")
    keys = [f.key for f in files]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise RunError(f"two inputs map to the same key: {', '.join(duplicates)}")
    return files


def upload(s3: Any, bucket: str, files: list[LocalFile]) -> list[Uploaded]:
    """Managed upload (multipart above 8 MiB), then read back the ETag that the event carries."""
    out = []
    for item in files:
        s3.upload_file(str(item.path), bucket, item.key)
        head = s3.head_object(Bucket=bucket, Key=item.key)
        out.append(Uploaded(item, head["ETag"].strip('"')))
    return out


Progress = Callable[[list[FileResult]], None]


def wait_for_executions(
    sfn: Any,
    state_machine_arn: str,
    results: list[FileResult],
    *,
    timeout_seconds: float,
    poll_seconds: float = 0.3,
    on_progress: Progress | None = None,
    known_arns: set[str] | None = None,
    refresh_seconds: float = 2.0,
) -> bool:
    """Match each uploaded file to its execution (by key and eTag) and wait until every one has
    finished. Returns False if the timeout passed first.

    One ListExecutions per poll gives every status; an execution is read in full (describe +
    history) when it first appears and when it ends, and while it runs only for the live
    display, at most every ``refresh_seconds`` (the endpoint serves the pipeline meanwhile)."""
    seen = set(known_arns or ())
    waiting = [r for r in results if not r.ignored]
    by_identity = {(r.key, r.uploaded.etag): r for r in waiting}
    by_arn: dict[str, FileResult] = {}
    refreshed: dict[str, float] = {}
    deadline = time.monotonic() + timeout_seconds
    while True:
        now = time.monotonic()
        for item in list_arns(sfn, state_machine_arn):
            arn = item["executionArn"]
            if arn in seen:
                continue
            mine = by_arn.get(arn)
            if mine is not None:
                stale = now - refreshed.get(arn, 0.0) >= refresh_seconds
                if item["status"] != "RUNNING" or (on_progress is not None and stale):
                    mine.execution = view(sfn, arn)
                    refreshed[arn] = now
                if item["status"] != "RUNNING":
                    seen.add(arn)
                continue
            current = view(sfn, arn)
            refreshed[arn] = now
            match = by_identity.get((current.key or "", current.etag or ""))
            if match is None:
                seen.add(arn)  # someone else's execution
                continue
            if match.execution is None or match.execution.arn == arn:
                match.execution = current
                by_arn[arn] = match
            if current.status != "RUNNING":
                seen.add(arn)
        if on_progress:
            on_progress(results)
        if all(r.execution is not None and r.execution.outcome != Outcome.RUNNING for r in waiting):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_seconds)


def download_reports(
    s3: Any, quarantine_bucket: str, results: list[FileResult], out_dir: Path
) -> None:
    """The report of each quarantined file (``<key>.error.json``) into ``out_dir``, beside
    where its outputs would have been."""
    for result in results:
        if result.outcome != Outcome.QUARANTINED:
            continue
        key = keys.report_key(result.key)
        destination = out_dir / key
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            s3.download_file(quarantine_bucket, key, str(destination))
        except Exception:
            continue
        result.report = destination


def download_outputs(s3: Any, results: list[FileResult], out_dir: Path) -> None:
    """Every output object of each succeeded file (one per format) into ``out_dir``."""
    for result in results:
        output = (result.execution.output or {}) if result.execution else {}
        target = output.get("output") if isinstance(output, dict) else None
        if not target:
            continue
        for key in target.get("keys", {}).values():
            destination = out_dir / key
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(target["bucket"], key, str(destination))
            result.downloaded.append(destination)


@dataclass
class RunOptions:
    out_dir: Path = Path("chute-out")
    expect_quarantine: list[str] = field(default_factory=list)
    timeout_seconds: float = 900.0
    suffixes: tuple[str, ...] = names.DEFAULT_SUFFIXES
    """Extensions the pipeline processes; other files are reported IGNORED at once."""
    quarantine_bucket: str | None = None
    """Where quarantined files' reports are downloaded from (None: not downloaded)."""


def expected_quarantine(key: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(key, p) or fnmatch.fnmatch(Path(key).name, p) for p in patterns)


def run_files(
    *,
    s3: Any,
    sfn: Any,
    staging_bucket: str,
    state_machine_arn: str,
    options: RunOptions,
    files: list[LocalFile],
    on_progress: Progress | None = None,
) -> tuple[list[FileResult], bool]:
    """Upload, wait, download. Returns the results and whether everything finished in time.
    Files the pipeline would skip (no processed extension) are not uploaded: IGNORED."""
    known = {e["executionArn"] for e in list_arns(sfn, state_machine_arn)}
    processed = [f for f in files if matches_suffix(f.key, options.suffixes)]
    uploaded = {u.file.key: u for u in upload(s3, staging_bucket, processed)}
    results = [
        FileResult(
            uploaded.get(f.key) or Uploaded(f, ""),
            expected_quarantine=expected_quarantine(f.key, options.expect_quarantine),
            ignored=f.key not in uploaded,
        )
        for f in files
    ]
    if on_progress:
        on_progress(results)
    finished = wait_for_executions(
        sfn,
        state_machine_arn,
        results,
        timeout_seconds=options.timeout_seconds,
        on_progress=on_progress,
        known_arns=known,
    )
    download_outputs(s3, results, options.out_dir)
    if options.quarantine_bucket:
        download_reports(s3, options.quarantine_bucket, results, options.out_dir)
    return results, finished
