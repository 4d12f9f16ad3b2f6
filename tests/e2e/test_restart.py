"""`chute up` keeps its data across restarts: stopped mid-batch (SIGKILL or SIGTERM) and started
again on the same folder, every file ends archived with its outputs, quarantined with its report,
or FAILED and rerunnable; none is silently gone, and the executions from before are listed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from chute.local.embedded import free_port
from tests.support.up import launch_up

GOOD = [f"batch/good-{i}.csv" for i in range(6)]
BAD = "batch/bad.csv"  # UTF-16 with a byte-order mark: a permanent error with a report
ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:chute-pipeline"


def _start(work: Path, port: int, grant_port: int) -> subprocess.Popen[str]:
    # its own process group: its workers die with it when the test kills the group
    process = launch_up(work, port, grant_port, new_session=True)
    lam = _client("lambda", port)
    deadline = time.monotonic() + 60
    while True:
        try:
            names = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
            if "chute-trigger" in names and process.poll() is None:
                return process
        except Exception:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            _kill(process)
            pytest.fail(f"chute up did not come up: {process.communicate()[0]}")
        time.sleep(0.2)


def _kill(process: subprocess.Popen[str], sig: int = signal.SIGKILL) -> str:
    if sig == signal.SIGKILL:
        with contextlib.suppress(ProcessLookupError):  # already gone: nothing left to kill
            os.killpg(process.pid, signal.SIGKILL)  # the whole tree, as a crash would
    else:
        process.send_signal(sig)
    out, _ = process.communicate(timeout=30)
    if sig != signal.SIGKILL:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return out


def _client(service: str, port: int) -> Any:
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )


def _keys(s3: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def _executions(sfn: Any) -> dict[str, str]:
    return {e["name"]: e["status"] for e in sfn.list_executions(stateMachineArn=ARN)["executions"]}


def _failed_in_staging(sfn: Any, staging: set[str]) -> set[str]:
    keys = set()
    for e in sfn.list_executions(stateMachineArn=ARN, statusFilter="FAILED")["executions"]:
        source = json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
        if source["source"]["key"] in staging:
            keys.add(source["source"]["key"])
    return keys


def _outcomes(s3: Any, sfn: Any) -> dict[str, str]:
    staging = _keys(s3, "chute-staging")
    archive, output = _keys(s3, "chute-archive"), _keys(s3, "chute-output")
    quarantine = _keys(s3, "chute-quarantine")
    running = any(status == "RUNNING" for status in _executions(sfn).values())
    failed = _failed_in_staging(sfn, staging) if not running else set()
    found = {}
    for key in [*GOOD, BAD]:
        if key in archive and f"{key}.jsonl" in output and key not in staging:
            found[key] = "archived"
        elif key in quarantine and f"{key}.error.json" in quarantine and key not in staging:
            found[key] = "quarantined"
        elif key in failed:
            found[key] = "failed"
    return found


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_stopped_batch_finishes_after_a_restart(tmp_path: Path, stop: int) -> None:
    # GIVEN chute up with a batch of files in flight (one of them bad)
    port, grant_port = free_port(), free_port()
    process = _start(tmp_path, port, grant_port)
    s3, sfn = _client("s3", port), _client("stepfunctions", port)
    try:
        for i, key in enumerate(GOOD):
            s3.put_object(Bucket="chute-staging", Key=key, Body=f"id,n\n{i},{i * i}\n".encode())
        s3.put_object(Bucket="chute-staging", Key=BAD, Body="id,n\n1,2\n".encode("utf-16"))
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:  # stop as soon as one file is done, the rest running
            statuses = _executions(sfn)
            if any(s != "RUNNING" for s in statuses.values()):
                break
            time.sleep(0.1)
        before = _executions(sfn)
        assert before, "no execution started before the stop"
    except BaseException:
        _kill(process)
        raise

    # WHEN it is stopped mid-batch and started again on the same folder
    _kill(process, stop)
    started = time.monotonic()
    process = _start(tmp_path, port, grant_port)
    restart_seconds = time.monotonic() - started
    try:
        # THEN every file reaches an outcome; none is silently gone
        deadline = time.monotonic() + 60
        outcomes: dict[str, str] = {}
        while time.monotonic() < deadline:
            outcomes = _outcomes(s3, sfn)
            if len(outcomes) == len(GOOD) + 1:
                break
            time.sleep(0.3)
        assert outcomes == {**dict.fromkeys(GOOD, "archived"), BAD: "quarantined"} or (
            len(outcomes) == len(GOOD) + 1 and "failed" in outcomes.values()
        ), (outcomes, _executions(sfn))
        assert outcomes[BAD] in ("quarantined", "failed")
        # AND the executions from before the stop are still listed, with a real status
        after = _executions(sfn)
        assert set(before) <= set(after)
        assert "RUNNING" not in {after[name] for name in before}
        status = subprocess.run(
            [
                sys.executable,
                "-m",
                "chute.cli",
                "status",
                "--all",
                "--json",
                "--limit",
                "100",
                "--endpoint-url",
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        listed = {row["execution"] for row in json.loads(status.stdout)}
        assert set(before) <= listed
    finally:
        banner = _kill(process, signal.SIGTERM)
    assert "restored" in banner, banner
    # executions the stop interrupted (a graceful stop may let them all finish first) come back
    # ABORTED, and their files went through again: announced again, unless the interrupted
    # execution had already moved its file out of staging (stopped after Archive/Quarantine) —
    # either way every file reached its outcome above
    if any(after[name] == "ABORTED" for name in before):
        assert "interrupted" in banner, banner
        assert "announced again" in banner or set(outcomes.values()) <= {
            "archived",
            "quarantined",
            "failed",
        }, banner
    print(f"restart to ready: {restart_seconds:.1f}s")
