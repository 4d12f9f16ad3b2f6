"""Parts uploaded in parallel: the object is the bytes written, in order; errors and aborts leave
nothing visible and no part behind."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from tasks.adapters.s3_multipart import MultipartWriter
from tasks.errors import StorageUnavailable
from tests.support.unit import OUTPUT

PART = 5 * 1024 * 1024


class Slow:
    """A client whose part uploads finish out of order (later parts first) and are counted."""

    def __init__(self, client: Any, fail_part: int | None = None) -> None:
        self._client = client
        self._fail = fail_part
        self.concurrent = 0
        self.most = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def upload_part(self, **kwargs: Any) -> Any:
        with self._lock:
            self.concurrent += 1
            self.most = max(self.most, self.concurrent)
        try:
            threading.Event().wait(0.05 if kwargs["PartNumber"] % 2 else 0.0)
            if kwargs["PartNumber"] == self._fail:
                from botocore.exceptions import ClientError

                raise ClientError({"Error": {"Code": "SlowDown"}}, "UploadPart")
            return self._client.upload_part(**kwargs)
        finally:
            with self._lock:
                self.concurrent -= 1


def _data(size: int) -> bytes:
    return random.Random(size).randbytes(size)


@pytest.mark.parametrize("parallel", [1, 2, 4])
def test_parts_in_parallel_make_the_bytes_written(s3: Any, parallel: int) -> None:
    data = _data(5 * PART + 123)
    client = Slow(s3)
    writer = MultipartWriter(client, OUTPUT, "out.jsonl", PART, "text/plain", parallel=parallel)
    for start in range(0, len(data), 1_000_003):
        writer.write(data[start : start + 1_000_003])
    writer.complete()
    assert s3.get_object(Bucket=OUTPUT, Key="out.jsonl")["Body"].read() == data
    assert client.most <= parallel
    if parallel > 1:
        assert client.most > 1  # they did overlap


def test_a_failing_part_fails_the_write_and_abort_leaves_nothing(s3: Any) -> None:
    data = _data(6 * PART)
    writer = MultipartWriter(Slow(s3, fail_part=2), OUTPUT, "out.jsonl", PART, "text/plain")
    with pytest.raises(StorageUnavailable, match="SlowDown"):
        for start in range(0, len(data), PART):
            writer.write(data[start : start + PART])
        writer.complete()
    writer.abort()
    assert s3.list_multipart_uploads(Bucket=OUTPUT).get("Uploads", []) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=OUTPUT)


def test_abort_with_parts_in_flight(s3: Any) -> None:
    writer = MultipartWriter(Slow(s3), OUTPUT, "out.jsonl", PART, "text/plain", parallel=4)
    writer.write(_data(3 * PART))
    writer.abort()
    assert s3.list_multipart_uploads(Bucket=OUTPUT).get("Uploads", []) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=OUTPUT)
