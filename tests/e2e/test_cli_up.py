"""`chute up` serves an endpoint any AWS client can use; `chute run --endpoint-url` uses it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from chute.embedded import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    work = tmp_path_factory.mktemp("up")
    process = subprocess.Popen(
        [sys.executable, "-m", "chute.cli", "up", "--port", str(port)],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    lam = boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            # the trigger function is the last resource created
            names = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
            if "chute-trigger" in names and process.poll() is None:
                break
        except Exception:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"chute up did not come up: {process.communicate()[0]}")
        time.sleep(0.3)
    yield url
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)


def test_any_boto3_client_sees_the_pipeline_resources(endpoint: str) -> None:
    common = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "x",
        "aws_secret_access_key": "x",
    }
    s3 = boto3.client("s3", **common)
    sfn = boto3.client("stepfunctions", **common)
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {"chute-staging", "chute-output", "chute-archive", "chute-quarantine"} <= buckets
    machines = [m["name"] for m in sfn.list_state_machines()["stateMachines"]]
    assert machines == ["chute-pipeline"]


def test_run_against_a_running_endpoint(endpoint: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chute.cli",
            "run",
            str(REPO / "samples" / "orders.csv"),
            "--endpoint-url",
            endpoint,
            "--out",
            str(tmp_path / "out"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCEEDED" in result.stdout
    assert (tmp_path / "out" / "orders.csv.jsonl").exists()
