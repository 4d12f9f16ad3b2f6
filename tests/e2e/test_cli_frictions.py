"""What a new user met (issue 27), as they meet it: the CLI as a subprocess against `chute up`,
its output and exit code."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.e2e.test_cli_ops import chute, finished, status


def test_uploading_a_file_the_pipeline_does_not_process_says_so_and_never_waits(
    endpoint: str, tmp_path: Path, s3: Any
) -> None:
    # GIVEN a spreadsheet and a CSV
    sheet, good = tmp_path / "report.xlsx", tmp_path / "ok.csv"
    sheet.write_bytes(b"PK\x03\x04 not a csv")
    good.write_bytes(b"a,b\n1,2\n")
    # WHEN uploaded with --wait (a timeout far below the hour the old behaviour waited)
    started = time.monotonic()
    result = chute(
        "upload", str(sheet), str(good), "--prefix", "f27/", "--wait", "--timeout", "60",
        "--endpoint-url", endpoint,
    )  # fmt: skip
    # THEN the spreadsheet is IGNORED at once and not uploaded; the CSV's outcome is shown; the
    # exit code says not everything went through
    assert time.monotonic() - started < 60
    assert result.returncode == 1, result.stdout + result.stderr
    assert "IGNORED" in result.stderr and "report.xlsx" in result.stderr
    assert "f27/ok.csv: SUCCEEDED" in result.stdout
    listed = s3.list_objects_v2(Bucket="chute-staging", Prefix="f27/").get("Contents", [])
    assert [o["Key"] for o in listed] == []  # ok.csv archived, report.xlsx never uploaded
    # AND only spreadsheets: a usage error, nothing uploaded
    alone = chute("upload", str(sheet), "--wait", "--endpoint-url", endpoint)
    assert alone.returncode == 2 and "nothing to upload" in alone.stderr


def test_status_lists_a_staged_file_the_pipeline_ignores(endpoint: str, s3: Any) -> None:
    # GIVEN a file put into staging with another tool, under a suffix chute doesn't process, and
    # a CSV put into the output bucket by mistake
    s3.put_object(Bucket="chute-staging", Key="f27i/notes.xlsx", Body=b"x")
    s3.put_object(Bucket="chute-output", Key="f27i/orders.csv", Body=b"a\n1\n")
    # THEN `chute status` names both, in the table and in JSON, saying why
    table = chute("status", "--key", "f27i/", "--endpoint-url", endpoint)
    assert table.returncode == 0, table.stderr
    said = " ".join(table.stdout.split())
    assert "IGNORED s3://chute-staging/f27i/notes.xlsx: suffix not processed" in said
    assert "IGNORED s3://chute-output/f27i/orders.csv: in the output bucket" in said
    rows = status(endpoint, "--key", "f27i/")
    assert {(r["key"], r["outcome"]) for r in rows} == {
        ("f27i/notes.xlsx", "IGNORED"),
        ("f27i/orders.csv", "IGNORED"),
    }


def test_a_quarantined_file_fixed_and_requeued_is_one_succeeded_file(
    endpoint: str, tmp_path: Path
) -> None:
    # GIVEN a file quarantined for a bad row, uploaded with --wait
    bad, fixed = tmp_path / "rows.csv", tmp_path / "rows-fixed.csv"
    bad.write_bytes(b"a,b\n1,2\n3\n")
    fixed.write_bytes(b"a,b\n1,2\n3,4\n")
    waited = chute(
        "upload", str(bad), "--prefix", "f27q/", "--wait", "--endpoint-url", endpoint
    )  # fmt: skip
    # THEN --wait shows the message with the row, and the next step
    assert waited.returncode == 1
    said = " ".join(waited.stdout.split())
    assert "f27q/rows.csv: QUARANTINED (MalformedContent: row 3" in said
    assert "chute requeue f27q/rows.csv --file" in said
    # AND `chute show` says where the file is now and how to bring it back
    shown = " ".join(chute("show", "f27q/rows.csv", "--endpoint-url", endpoint).stdout.split())
    assert "input: s3://chute-quarantine/f27q/rows.csv" in shown
    assert "chute requeue f27q/rows.csv" in shown
    # WHEN the fixed copy is requeued in its place
    requeued = chute("requeue", "f27q/rows.csv", "--file", str(fixed), "--endpoint-url", endpoint)
    assert requeued.returncode == 0, requeued.stderr
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = status(endpoint, "--key", "f27q/")
        if rows and rows[0]["outcome"] != "RUNNING" and rows[0]["status"] != "FAILED":
            break
        time.sleep(0.5)
    # THEN status lists the file once, succeeded, and --failed no longer lists it
    assert [(r["key"], r["outcome"]) for r in status(endpoint, "--key", "f27q/")] == [
        ("f27q/rows.csv", "SUCCEEDED")
    ]
    assert [r for r in status(endpoint, "--failed", "--key", "f27q/")] == []
    rerun = chute("rerun", "--failed", "--since", "1h", "--endpoint-url", endpoint)
    assert "f27q/rows.csv" not in rerun.stdout + rerun.stderr


def test_watch_writes_a_line_per_change_when_not_on_a_terminal(endpoint: str, s3: Any) -> None:
    # GIVEN `chute watch --follow` with its output to a pipe, and `chute watch` started before
    # any upload
    follow = subprocess.Popen(
        [sys.executable, "-m", "chute.cli", "watch", "--follow", "--interval", "0.3",
         "--endpoint-url", endpoint],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    once = subprocess.Popen(
        [sys.executable, "-m", "chute.cli", "watch", "--interval", "0.3",
         "--endpoint-url", endpoint],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    said = {"follow": _lines_of(follow.stderr), "once": _lines_of(once.stderr)}
    try:
        # both have read the executions once (bounded wait for what each says on stderr)
        _wait_for(said["follow"], "watching: one line per change")
        _wait_for(said["once"], "no execution yet: waiting for one to start")
        assert once.poll() is None, "watch without --follow must wait for an execution"
        # WHEN a file is uploaded
        s3.put_object(Bucket="chute-staging", Key="f27w/seen.csv", Body=b"a\n1\n")
        finished(endpoint, "f27w/seen.csv")
        # THEN watch (no --follow) ends once the file's execution has, having shown it
        once.wait(timeout=60)
        out = once.stdout.read() if once.stdout else ""
        assert once.returncode == 0 and "f27w/seen.csv" in out and "SUCCEEDED" in out
    finally:
        once.kill()
        time.sleep(1.0)
        follow.terminate()
    follow.wait(timeout=30)
    followed = follow.stdout.read() if follow.stdout else ""
    # AND --follow wrote the file's changes as lines while it ran
    lines = [line for line in followed.splitlines() if "f27w/seen.csv" in line]
    events = [line for line in lines if " event: " in line]  # the completion event's own line
    lines = [line for line in lines if line not in events]
    assert lines and lines[-1].split()[-1] == "SUCCEEDED", followed
    assert all(line[:8].count(":") == 2 for line in lines)  # each a timestamped plain line


def _lines_of(stream: Any) -> list[str]:
    """The lines ``stream`` gives, collected by a thread as they come."""
    lines: list[str] = []

    def read() -> None:
        for line in stream:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_for(lines: list[str], text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in lines):
        assert time.monotonic() < deadline, f"never said {text!r}: {lines}"
        time.sleep(0.1)
