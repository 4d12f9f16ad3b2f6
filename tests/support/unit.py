"""Unit-tier helpers: chute's bucket names, staged objects, fresh handler caches."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from tasks import entry
from tasks.models import ObjectRef, upload_time

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
        uploaded=upload_time(datetime.now(UTC)),
    )


@contextmanager
def fresh() -> Iterator[None]:
    """Forget every handler's cached settings and clients before and after: each test reads its
    own environment, and leaves nothing built on moto behind."""
    entry.reset()
    yield
    entry.reset()
