"""Shared by the unit tests: moto (fake credentials, every AWS call in memory, chute's buckets
created), staged objects, and fresh handler caches."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import boto3
import pytest
from moto import mock_aws

from chute import moto_fixes
from tasks import metrics
from tasks.adapters.s3 import S3Store
from tasks.models import ObjectRef

STAGING = "chute-staging"
OUTPUT = "chute-output"
ARCHIVE = "chute-archive"
QUARANTINE = "chute-quarantine"
BUCKETS = (STAGING, OUTPUT, ARCHIVE, QUARANTINE)
SEQUENCER = "0065F1A2B3C4D5E6F7"
KEYS = [  # keys that S3 events and copy sources encode: spaces, +, %, parentheses, non-ASCII
    "incoming/orders.csv",
    "incoming/monthly report (2024).csv",
    "incoming/a+b=c.tsv",
    "incoming/100% done.csv.gz",
    "incoming/déjà vu/DATA.CSV",
]


@pytest.fixture(autouse=True)
def no_pending_metrics() -> Iterator[None]:
    """Domain calls made outside a handler record metrics that no handler flushes: drop them, so
    no test's EMF document carries another test's counts."""
    metrics.discard()
    yield
    metrics.discard()


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
    fix = moto_fixes.FIXES["s3-complete-if-match"]
    fix.apply()
    try:
        with mock_aws():
            yield
    finally:
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


def put(s3: Any, key: str, body: bytes) -> ObjectRef:
    """Stage an object; the ObjectRef an S3 event would announce for it."""
    resp = s3.put_object(Bucket=STAGING, Key=key, Body=body)
    return ObjectRef(
        bucket=STAGING,
        key=key,
        size=len(body),
        etag=resp["ETag"].strip('"'),
        version_id=resp.get("VersionId"),
        sequencer=SEQUENCER,
    )


class Cached(Protocol):
    def cache_clear(self) -> None: ...


@contextmanager
def fresh(*cached: Cached) -> Iterator[None]:
    """Clear a handler's cached settings and clients before and after: each test reads its own
    environment, and leaves nothing built on moto behind."""
    for function in cached:
        function.cache_clear()
    yield
    for function in cached:
        function.cache_clear()
