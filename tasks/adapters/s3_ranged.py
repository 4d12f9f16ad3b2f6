"""Reading one object as parallel ranged GETs, in order: S3 keeps several cores fed.

One GET stream gives one connection's throughput (tens of MB/s to low hundreds); the engine on
a sized Batch job converts more than that per core. S3's advice is byte ranges of 8-16 MB
fetched in parallel. :class:`RangedReader` keeps ``parallel`` ranges in flight ahead of the
reader and hands their bytes over in file order, so memory stays at ``parallel`` ranges.
Every range names the version read (or its ETag with ``If-Match``): a range never mixes two
versions of the key.
"""

from __future__ import annotations

import io
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

from tasks.adapters.s3_errors import strip_etag, translate, version_args
from tasks.errors import StorageUnavailable
from tasks.models import ObjectRef

RANGE_BYTES: Final = 8 * 1024 * 1024
"""Bytes per ranged GET (S3's advice: 8-16 MB)."""
MAX_PARALLEL: Final = 32


def parallel_for(cores: int) -> int:
    """Ranges in flight for a converter on ``cores`` cores: two per core (one arriving while
    the other is converted), at least 2."""
    return max(2, min(MAX_PARALLEL, 2 * cores))


class RangedReader(io.RawIOBase):
    """A readable stream over bytes ``[start, size)`` of ``ref`` fetched as ordered ranged GETs
    (``size``: the object's size, or where to stop)."""

    def __init__(
        self,
        client: Any,
        ref: ObjectRef,
        size: int,
        *,
        range_bytes: int = RANGE_BYTES,
        parallel: int = 4,
        start: int = 0,
    ) -> None:
        if range_bytes < 1 or parallel < 1:
            raise ValueError("range_bytes and parallel must be at least 1")
        self._client = client
        self._ref = ref
        self._size = size
        self._range = range_bytes
        self._what = f"read s3://{ref.bucket}/{ref.key}"
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="s3-range")
        self._pending: deque[Future[bytes]] = deque()
        self._next = start  # first byte not yet requested
        self._buffer = memoryview(b"")
        # the version read: by id where the bucket keeps versions, else by ETag (If-Match)
        self._pin: dict[str, str] = version_args(ref) or (
            {"IfMatch": f'"{strip_etag(ref.etag)}"'} if ref.etag else {}
        )
        for _ in range(parallel):
            self._request()

    def readable(self) -> bool:
        return True

    def _request(self) -> None:
        if self._next >= self._size:
            return
        end = min(self._size, self._next + self._range) - 1
        self._pending.append(self._pool.submit(self._get, self._next, end))
        self._next = end + 1

    def _get(self, start: int, end: int) -> bytes:
        ref = self._ref
        try:
            resp = self._client.get_object(
                Bucket=ref.bucket,
                Key=ref.key,
                Range=f"bytes={start}-{end}",
                **self._pin,
            )
            data: bytes = resp["Body"].read()
        except Exception as exc:
            raise translate(exc, what=self._what) from exc
        if len(data) != end - start + 1:  # the connection ended early: worth another try
            raise StorageUnavailable(f"{self._what}: bytes {start}-{end} came {len(data)} long")
        return data

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        if not self._buffer:
            if not self._pending:
                return 0
            self._buffer = memoryview(self._pending.popleft().result())
            self._request()
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        # Not waiting: a GET stalled on the network must not hold up a stop (SIGTERM) --
        # its thread ends with the read's timeout, its bytes unused.
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._buffer = memoryview(b"")
        super().close()
