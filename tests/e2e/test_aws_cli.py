"""The real aws CLI uploads to `chute up`, multipart, and the file is processed exactly once.

The CLI lives in its own venv (.venv-awscli, installed by `make workflow`/`make test`): awscli
brings its own botocore, which must not meet the one pinned in constraints.txt.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from chute.ops.resources import DEFAULT_REGION, Resources
from tests.e2e.test_cli_ops import finished, status

REPO = Path(__file__).resolve().parents[2]
R = Resources(prefix="chute", region=DEFAULT_REGION)
PART = 5 * 1024 * 1024  # the aws CLI's "5MB" is 5 MiB, the smallest part S3 accepts
ROWS = 400_000  # ~12 MB of CSV: three parts


def aws_cli() -> Path:
    """The CLI to test with; a missing one fails the test (it is part of `make test`)."""
    path = Path(os.environ.get("CHUTE_AWS_CLI") or REPO / ".venv-awscli" / "bin" / "aws")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"the aws CLI is not installed at {path}: run `make workflow` (or `make test`), "
            "which installs it into .venv-awscli, or point CHUTE_AWS_CLI at one"
        )
    return path


def cli_env(tmp_path: Path) -> dict[str, str]:
    """An isolated CLI configuration: nothing from the user's ~/.aws or AWS_* variables."""
    config = tmp_path / "aws-config"
    config.write_text(
        "[default]\n"
        f"region = {R.region}\n"
        "s3 =\n"
        "    multipart_threshold = 5MB\n"
        "    multipart_chunksize = 5MB\n"
    )
    credentials = tmp_path / "aws-credentials"
    credentials.write_text("[default]\naws_access_key_id = chute\naws_secret_access_key = chute\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=R.region,
        aws_access_key_id="chute",
        aws_secret_access_key="chute",
    )


def wait_for_empty_queue(endpoint: str, queue: str, timeout: float = 20) -> None:
    """Until no S3 event is waiting or being handled: each one has started its execution."""
    sqs = client(endpoint, "sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    counts = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(counts))
        if all(attributes["Attributes"][c] == "0" for c in counts):
            return
        time.sleep(0.3)
    raise AssertionError(f"{queue} still holds messages after {timeout}s")


def test_aws_s3_cp_multipart_is_processed_exactly_once(endpoint: str, tmp_path: Path) -> None:
    cli = aws_cli()
    # GIVEN a valid CSV of ~12 MB, over the CLI's 5 MiB multipart threshold
    path = tmp_path / "orders.csv"
    rows = "".join(f"{i},customer-{i:07d},{i % 100_000 / 100:.2f}\n" for i in range(ROWS))
    path.write_text("id,name,amount\n" + rows)
    size = path.stat().st_size
    assert size > 2 * PART
    key = "awscli/orders.csv"
    # WHEN the real aws CLI copies it into the staging bucket
    result = subprocess.run(
        [
            str(cli),
            "s3",
            "cp",
            str(path),
            f"s3://{R.staging_bucket}/{key}",
            "--endpoint-url",
            endpoint,
            "--no-progress",
        ],
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # THEN it went up in parts (a multipart ETag ends in -<parts>)
    s3 = client(endpoint, "s3")
    etag = s3.head_object(Bucket=R.staging_bucket, Key=key)["ETag"].strip('"')
    assert etag.endswith(f"-{math.ceil(size / PART)}"), etag
    # AND its execution succeeded in Lambda with every row converted
    row = finished(endpoint, key)
    assert (row["outcome"], row["route"]) == ("SUCCEEDED", "lambda"), row
    output = s3.get_object(Bucket=R.output_bucket, Key=f"{key}.jsonl")["Body"].read()
    lines = output.splitlines()
    assert len(lines) == ROWS
    assert json.loads(lines[-1]) == {
        "id": ROWS - 1,
        "name": f"customer-{ROWS - 1:07d}",
        "amount": float(f"{(ROWS - 1) % 100_000 / 100:.2f}"),
    }
    # AND once every S3 event has been handled, that was its only execution
    wait_for_empty_queue(endpoint, R.queue_name)
    assert [r["key"] for r in status(endpoint, "--key", key)] == [key]
