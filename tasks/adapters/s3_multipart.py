"""Objects on S3 made visible in one step: a server-side copy waiting to be completed (one
CopyObject, or a multipart copy's parts), and a streaming writer whose parts grow with the
stream (tasks.s3_limits). Both become visible only when completed, conditionally
(tasks.fence), and leave nothing behind when aborted."""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from tasks import s3_limits
from tasks.adapters.s3_errors import (
    CONFLICT,
    GONE,
    code,
    conditions,
    strip_etag,
    translate,
    translate_write,
    version_args,
)
from tasks.errors import SourceChanged, StorageUnavailable, WriteConflict
from tasks.models import Head, upload_time

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from tasks.fence import Condition
    from tasks.models import ObjectRef


class CopyStore(Protocol):
    """What a pending copy needs of the store that started it (tasks.adapters.s3.S3Store)."""

    @property
    def client(self) -> Any: ...

    def head(self, ref: ObjectRef) -> Head: ...

    def exists(self, bucket: str, key: str) -> Head | None: ...


class PendingCopy:
    """A copy waiting for :meth:`complete` (or :meth:`abort`): the parts of a multipart copy in
    place (``upload_id``), or, for a ``source`` that fits one part, nothing yet: completing it
    is then one CopyObject, conditional on the destination and (``if_match``) on the source."""

    def __init__(
        self,
        store: CopyStore,
        bucket: str,
        key: str,
        upload_id: str | None,
        parts: list[dict[str, Any]],
        extra: dict[str, Any],
        what: str,
        source: ObjectRef | None = None,
        if_match: str | None = None,
    ) -> None:
        self._store = store
        self._bucket = bucket
        self._key = key
        self._upload_id = upload_id
        self.parts = parts
        self._extra = extra
        self._what = what
        self._source = source
        self._if_match = if_match

    def complete(self, condition: Condition | None = None) -> Head:
        """Make the copy visible; WriteConflict when ``condition`` fails (complete again with
        another condition: a multipart copy's parts stay), SourceChanged when the source no
        longer has the eTag the copy was started for. Returns the copy's HEAD: for one
        CopyObject whose copy has the source's eTag (the same bytes, S3 says), the head its
        answer gives; otherwise the copy is looked at (HEAD)."""
        if self._source is not None:
            copied = self._copy_object(self._source, condition)
            if copied is not None:
                return copied
        else:
            try:
                self._store.client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self.parts},
                    **conditions(condition),
                )
            except Exception as exc:
                raise translate_write(exc, what=self._what) from exc
            self._upload_id = None
        copied = self._store.exists(self._bucket, self._key)
        if copied is None:
            raise StorageUnavailable(f"{self._what}: the copy is not visible at {self._key}")
        return copied

    def _copy_object(self, source: ObjectRef, condition: Condition | None) -> Head | None:
        """The copy's head when its eTag is the source's (else None: look at it)."""
        request: dict[str, Any] = {
            "Bucket": self._bucket,
            "Key": self._key,
            "CopySource": {"Bucket": source.bucket, "Key": source.key, **version_args(source)},
            "MetadataDirective": "REPLACE",
            **self._extra,
            **conditions(condition),
        }
        if self._if_match:
            request["CopySourceIfMatch"] = f'"{strip_etag(self._if_match)}"'
        try:
            resp = self._store.client.copy_object(**request)
        except ClientError as exc:
            if code(exc) not in CONFLICT | GONE:
                raise translate(exc, what=self._what) from exc
            # a 412/409/404 answers for either side: the source says which
            raise self._refused(source, exc) from exc
        except Exception as exc:
            raise translate(exc, what=self._what) from exc
        result = resp.get("CopyObjectResult") or {}
        etag = strip_etag(result.get("ETag", ""))
        if not self._if_match or etag != strip_etag(self._if_match):
            return None
        metadata = self._extra.get("Metadata") or {}
        return Head(
            size=source.size,
            etag=etag,
            version_id=resp.get("VersionId"),
            metadata={str(k).lower(): str(v) for k, v in metadata.items()},
            content_type=self._extra.get("ContentType"),
            last_modified=upload_time(result.get("LastModified")),
        )

    def _refused(self, source: ObjectRef, exc: ClientError) -> Exception:
        """SourceChanged when the source has another eTag than the copy's (SourceMissing, from
        the HEAD, when it is gone); otherwise the destination's condition failed: WriteConflict."""
        staged = self._store.head(source)
        if self._if_match and staged.etag != strip_etag(self._if_match):
            return SourceChanged(f"{self._what}: object changed since the event ({code(exc)})")
        return WriteConflict(f"{self._what}: another writer changed the object ({code(exc)})")

    def abort(self) -> None:
        if self._upload_id is None:
            return
        with suppress(ClientError, BotoCoreError):
            self._store.client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
            )
        self._upload_id = None


UPLOAD_PARALLEL = 4
"""Parts of one object uploaded at once: enough to keep a converter's output flowing."""


class MultipartWriter:
    """Uploads each part as it fills, up to ``parallel`` parts at once (S3 takes parts in any
    order): memory holds the part filling and the parts in flight, at most ``parallel + 1``."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        part_size: int,
        content_type: str,
        metadata: dict[str, str] | None = None,
        parallel: int = UPLOAD_PARALLEL,
    ):
        self._client = client
        self._parallel = max(1, parallel)
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: deque[Future[dict[str, Any]]] = deque()
        self._numbered = 0  # parts handed out so far
        self._metadata = metadata or {}
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._content_type = content_type
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self._completed = False
        self.bytes_written = 0

    def write(self, data: Buffer) -> None:
        with memoryview(data) as view:
            self._buffer += view
            self.bytes_written += view.nbytes
        while len(self._buffer) >= (size := self._next_part_size()):
            with memoryview(self._buffer) as buffered:
                chunk = bytes(buffered[:size])  # one copy (a slice of the bytearray is another)
            del self._buffer[:size]
            self._upload_part(chunk)

    def _next_part_size(self) -> int:
        """Parts grow as the stream does (s3_limits.streaming_part): any output up to S3's
        largest object fits in its 10,000 parts."""
        return s3_limits.streaming_part(self._numbered + 1, self._part_size)

    def _start(self) -> str:
        if self._upload_id is None:
            try:
                resp = self._client.create_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    ContentType=self._content_type,
                    Metadata=self._metadata,
                )
            except Exception as exc:
                raise translate(exc, what=f"write s3://{self._bucket}/{self._key}") from exc
            self._upload_id = str(resp["UploadId"])
        return self._upload_id

    def _upload_part(self, chunk: bytes) -> None:
        """Hand a part to the pool; past ``parallel`` parts in flight, wait for the oldest (its
        error, if any, is raised here)."""
        upload_id = self._start()
        self._numbered += 1
        if self._parallel == 1:
            self._parts.append(self._send(upload_id, self._numbered, chunk))
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._parallel, thread_name_prefix="s3-part")
        self._inflight.append(self._pool.submit(self._send, upload_id, self._numbered, chunk))
        if len(self._inflight) >= self._parallel:
            self._parts.append(self._inflight.popleft().result())

    def _settle(self) -> None:
        """Wait for every part in flight (raising the first error)."""
        while self._inflight:
            self._parts.append(self._inflight.popleft().result())

    def _send(self, upload_id: str, number: int, chunk: bytes) -> dict[str, Any]:
        try:
            resp = self._client.upload_part(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=upload_id,
                PartNumber=number,
                Body=chunk,
            )
        except Exception as exc:
            raise translate(exc, what=f"write s3://{self._bucket}/{self._key}") from exc
        return {"PartNumber": number, "ETag": resp["ETag"]}

    def complete(self, condition: Condition | None = None) -> None:
        """Make the object visible (conditionally: WriteConflict when ``condition`` fails, and
        the writer can complete again with another condition)."""
        what = f"write s3://{self._bucket}/{self._key}"
        if self._upload_id is None:
            # Small output: one plain PUT is cheaper than a one-part multipart upload.
            try:
                self._client.put_object(
                    Bucket=self._bucket,
                    Key=self._key,
                    Body=bytes(self._buffer),
                    ContentType=self._content_type,
                    Metadata=self._metadata,
                    **conditions(condition),
                )
            except Exception as exc:
                raise translate_write(exc, what=what) from exc
            self._completed = True
            return
        if self._buffer:
            self._upload_part(bytes(self._buffer))
            self._buffer.clear()
        self._settle()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        try:
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
                **conditions(condition),
            )
        except Exception as exc:
            raise translate_write(exc, what=what) from exc
        self._completed = True

    def abort(self) -> None:
        for future in self._inflight:
            future.cancel()
        self._inflight.clear()
        if self._pool is not None:  # no part may land after the abort
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._upload_id is None or self._completed:
            return
        # If the abort fails too, the bucket's lifecycle rule removes the parts after a day.
        with suppress(ClientError, BotoCoreError):
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
            )
