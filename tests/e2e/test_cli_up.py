"""`chute up` serves an endpoint any AWS client can use; `chute run --endpoint-url` uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[2]


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
