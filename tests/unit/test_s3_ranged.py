"""Parallel ranged GETs: the bytes of the version read, in order, bounded memory, errors named."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest

from tasks.adapters.s3 import S3Store
from tasks.adapters.s3_ranged import RangedReader, parallel_for
from tasks.errors import SourceChanged, SourceMissing, StorageUnavailable
from tests.support.unit import put


def _body(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize(
    ("size", "range_bytes", "parallel"),
    [(0, 10, 3), (1, 10, 3), (10, 10, 1), (11, 10, 2), (1000, 7, 4), (4096, 1000, 16)],
)
def test_reads_every_byte_in_order(s3: Any, size: int, range_bytes: int, parallel: int) -> None:
    body = _body(size)
    ref = put(s3, "incoming/big.csv", body)
    with RangedReader(s3, ref, size, range_bytes=range_bytes, parallel=parallel) as reader:
        out = io.BufferedReader(reader, buffer_size=13).read()
    assert out == body


def test_small_reads_and_readinto(s3: Any) -> None:
    body = _body(5000)
    ref = put(s3, "incoming/big.csv", body)
    got = bytearray()
    with RangedReader(s3, ref, len(body), range_bytes=333, parallel=3) as reader:
        while chunk := reader.read(97):
            got += chunk
    assert bytes(got) == body


def test_reads_the_version_it_was_given(s3: Any) -> None:
    """A newer upload of the key while reading: the ranges still come from the version read."""
    s3.put_bucket_versioning(Bucket="chute-staging", VersioningConfiguration={"Status": "Enabled"})
    old = _body(3000, seed=1)
    ref = put(s3, "incoming/big.csv", old)
    reader = RangedReader(s3, ref, len(old), range_bytes=100, parallel=2)
    put(s3, "incoming/big.csv", _body(3000, seed=2))
    with reader:
        assert reader.read() == old


def test_a_replaced_object_without_versions_is_source_changed(s3: Any) -> None:
    old = _body(3000, seed=1)
    ref = put(s3, "incoming/big.csv", old)
    put(s3, "incoming/big.csv", _body(3000, seed=2))
    with pytest.raises(SourceChanged), RangedReader(s3, ref, 3000, range_bytes=100) as r:
        r.read()


def test_a_deleted_object_is_source_missing(s3: Any) -> None:
    ref = put(s3, "incoming/big.csv", _body(3000))
    s3.delete_object(Bucket=ref.bucket, Key=ref.key)
    with pytest.raises(SourceMissing), RangedReader(s3, ref, 3000, range_bytes=100) as reader:
        reader.read()


class _Short:
    """A client whose ranged GETs come back one byte short (a connection cut mid-body)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        resp = dict(self._client.get_object(**kwargs))
        data = resp["Body"].read()
        resp["Body"] = io.BytesIO(data[:-1])
        return resp


def test_a_short_range_is_transient(s3: Any) -> None:
    ref = put(s3, "incoming/big.csv", _body(300))
    reader = RangedReader(_Short(s3), ref, 300, range_bytes=100)
    with pytest.raises(StorageUnavailable, match="came 99 long"), reader:
        reader.read()


def test_close_before_the_end_stops_cleanly(s3: Any) -> None:
    ref = put(s3, "incoming/big.csv", _body(10_000))
    reader = RangedReader(s3, ref, 10_000, range_bytes=100, parallel=4)
    assert len(reader.read(50)) == 50
    reader.close()
    assert reader.closed


def test_store_streams_large_objects_by_ranges(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tasks.adapters.s3.RANGE_BYTES", 1000)
    body = _body(10_000)
    ref = put(s3, "incoming/big.csv", body)
    calls: list[str] = []

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(s3, name)

        def get_object(self, **kwargs: Any) -> Any:
            calls.append(kwargs.get("Range", ""))
            return s3.get_object(**kwargs)

    stream = S3Store(Counting()).open_stream(ref)
    with stream:
        assert stream.read() == body
    assert len(calls) == 10 and all(c.startswith("bytes=") for c in calls)
    small = put(s3, "incoming/small.csv", b"a,b\n1,2\n")
    calls.clear()
    with S3Store(Counting()).open_stream(small) as stream:
        assert stream.read() == b"a,b\n1,2\n"
    assert calls == [""]  # one plain GET


@pytest.mark.parametrize(("cores", "parallel"), [(1, 2), (2, 4), (16, 32), (64, 32)])
def test_parallel_for(cores: int, parallel: int) -> None:
    assert parallel_for(cores) == parallel
