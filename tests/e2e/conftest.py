"""One `chute up` for the CLI tests that need a running endpoint."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chute.local.embedded import free_port
from tests.support.up import Up, launch_up


@pytest.fixture(scope="session")
def endpoint(up: Up) -> str:
    return up.endpoint


@pytest.fixture(scope="session")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    port, grant_port = free_port(), free_port()
    work = tmp_path_factory.mktemp("up")
    process = launch_up(work, port, grant_port)
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
    yield Up(endpoint=url, grant_url=f"http://127.0.0.1:{grant_port}/grants")
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def s3(endpoint: str) -> Any:
    """An S3 client on the session's `chute up`."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
