"""The unit tier's fixtures: moto (fake credentials, every AWS call in memory, chute's buckets
created) and the real S3 adapter on it. Helpers live in tests/support/unit.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chute.local import moto_patches
from tasks.adapters.s3 import S3Store
from tests.support.unit import BUCKETS


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every boto3 call goes to moto, with fake credentials; never to a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # S3 conditional writes as AWS has them (chute's newest-version-wins publication needs them)
    fixes = [moto_patches.FIXES[n] for n in ("s3-complete-if-match", "s3-copy-object-conditions")]
    for fix in fixes:
        fix.apply()
    try:
        with mock_aws():
            yield
    finally:
        for fix in reversed(fixes):
            fix.revert()


@pytest.fixture
def s3(aws: None) -> Any:
    """An S3 client on moto, with chute's four buckets created (empty)."""
    client = boto3.client("s3", region_name="us-east-1")
    for bucket in BUCKETS:
        client.create_bucket(Bucket=bucket)
    return client


@pytest.fixture
def store(s3: Any) -> S3Store:
    """The real adapter, on moto."""
    return S3Store()
