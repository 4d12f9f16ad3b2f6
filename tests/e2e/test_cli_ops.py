"""The operations commands as a person runs them, against `chute up`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chute.local.embedded import free_port


def chute(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chute.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def status(endpoint: str, *extra: str) -> list[dict[str, Any]]:
    result = chute("status", "--json", "--endpoint-url", endpoint, *extra)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def finished(endpoint: str, key: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [r for r in status(endpoint, "--key", key) if r["status"] != "RUNNING"]
        if rows:
            return rows[0]
        time.sleep(0.5)
    raise AssertionError(f"{key} did not finish")


def test_status_show_and_watch(endpoint: str, s3: Any) -> None:
    # watch, started before the upload (a file can be done before a later watch's first look),
    # returns once the execution it saw has ended and nothing runs
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chute.cli",
            "watch",
            "--interval",
            "0.3",
            "--endpoint-url",
            endpoint,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watch.stderr is not None
    said = watch.stderr.readline()  # bounded: watch says at once that it is watching
    assert "watching" in said or "no execution yet" in said, said
    s3.put_object(Bucket="chute-staging", Key="cli/ok.csv", Body=b"a,b\n1,2\n")
    try:
        _, err = watch.communicate(timeout=120)
    finally:
        watch.kill()
    assert watch.returncode == 0, err
    row = finished(endpoint, "cli/ok.csv")
    assert (row["outcome"], row["route"]) == ("SUCCEEDED", "lambda")
    shown = chute("show", "cli/ok.csv", "--endpoint-url", endpoint)
    assert shown.returncode == 0, shown.stderr
    for state in ("Validate", "ConvertInLambda", "Archive", "NotifySucceeded"):
        assert state in shown.stdout
    assert "output: s3://chute-output/cli/ok.csv.jsonl" in shown.stdout
    assert "schema: a int, b int" in shown.stdout  # inferred: typed by default
    as_json = json.loads(
        chute("show", row["execution"], "--json", "--endpoint-url", endpoint).stdout
    )
    assert as_json["key"] == "cli/ok.csv"
    assert [s["state"] for s in as_json["states"]][:2] == ["LoadConfig", "Validate"]


def test_a_quarantined_file_is_refused_by_rerun_and_requeued(endpoint: str, s3: Any) -> None:
    s3.put_object(Bucket="chute-staging", Key="cli/bad.csv", Body=b"a,b\n1\n")
    row = finished(endpoint, "cli/bad.csv")
    assert (row["outcome"], row["error"]) == ("QUARANTINED", "MalformedContent")
    assert [r["key"] for r in status(endpoint, "--failed")].count("cli/bad.csv") == 1
    refused = chute("rerun", "cli/bad.csv", "--endpoint-url", endpoint)
    assert refused.returncode == 1
    assert "refused" in refused.stdout and "chute requeue cli/bad.csv" in refused.stdout
    s3.put_object(Bucket="chute-quarantine", Key="cli/bad.csv", Body=b"a,b\n1,2\n")
    requeued = chute("requeue", "cli/bad.csv", "--endpoint-url", endpoint)
    assert requeued.returncode == 0, requeued.stderr
    assert "requeued s3://chute-quarantine/cli/bad.csv -> s3://chute-staging/cli/bad.csv" in (
        requeued.stdout
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(r["outcome"] == "SUCCEEDED" for r in status(endpoint, "--key", "cli/bad.csv")):
            break
        time.sleep(0.5)
    else:
        pytest.fail("the requeued file was not converted")


def test_unknown_execution_is_a_clear_error(endpoint: str) -> None:
    result = chute("show", "no-such-execution", "--endpoint-url", endpoint)
    assert result.returncode == 2
    assert "no execution named 'no-such-execution'" in result.stderr


def test_unreachable_endpoint_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = chute("status", "--endpoint-url", url)
    assert result.returncode == 2
    assert f"cannot reach the endpoint {url}" in result.stderr


def test_missing_credentials_is_a_clear_error(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") or k == "AWS_EC2_METADATA_DISABLED"
    }
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
    )
    result = chute("status", "--stack", "Chute", env=env)
    assert result.returncode == 2
    assert "no AWS credentials" in result.stderr


def test_upload_waits_for_the_outcome(endpoint: str, tmp_path: Path) -> None:
    # GIVEN a file over one part (6 MiB, 5 MiB parts)
    path = tmp_path / "big.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * (6 * 1024 * 1024 // 4))
    # WHEN uploaded with --wait
    result = chute(
        "upload",
        str(path),
        "--prefix",
        "cli/up/",
        "--part-size-mb",
        "5",
        "--wait",
        "--endpoint-url",
        endpoint,
    )
    # THEN it went multipart and its execution succeeded (exactly one)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "uploaded s3://chute-staging/cli/up/big.csv" in result.stdout
    assert "2 parts" in result.stdout
    assert "cli/up/big.csv: SUCCEEDED" in result.stdout
    assert len(status(endpoint, "--key", "cli/up/big.csv")) == 1
