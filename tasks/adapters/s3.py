"""S3 access for the tasks: streaming reads, multipart writes, managed copies.

AWS errors are translated by error code (never by message) into the workflow's error contract and
chained (``raise X from exc``): tasks.adapters.s3_errors. Multipart objects:
tasks.adapters.s3_multipart.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, BinaryIO, Final, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tasks import cores, s3_limits
from tasks.adapters.s3_assembly import assemble_parts
from tasks.adapters.s3_errors import (
    CONFLICT,
    MISSING,
    code,
    conditions,
    strip_etag,
    translate,
    translate_write,
    version_args,
)
from tasks.adapters.s3_multipart import MultipartWriter, PendingCopy
from tasks.adapters.s3_ranged import MAX_PARALLEL, RANGE_BYTES, RangedReader, parallel_for
from tasks.errors import SourceMissing
from tasks.models import Head, ObjectRef, upload_time
from tasks.multipart_layout import Part

if TYPE_CHECKING:
    from tasks.fence import Condition

COPY_PART_BYTES: Final = 512 * 1024 * 1024
"""Part size of a multipart copy: a 50 GB original is ~100 UploadPartCopy requests."""
COPY_THREADS: Final = 16
"""UploadPartCopy requests in flight at once (S3 copies server-side; the function only waits)."""


def default_client() -> Any:
    """A client with standard retry mode; the endpoint comes from AWS_ENDPOINT_URL when set."""
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        max_pool_connections=MAX_PARALLEL,  # ranged GETs and part copies in flight at once
    )
    return boto3.client("s3", config=config)


class S3Store:
    """The tasks' port to S3."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or default_client()

    @property
    def client(self) -> Any:
        return self._client

    def head(self, ref: ObjectRef) -> Head:
        try:
            resp = self._client.head_object(Bucket=ref.bucket, Key=ref.key, **version_args(ref))
        except Exception as exc:
            raise translate(exc, what=f"s3://{ref.bucket}/{ref.key}") from exc
        return _head(resp, int(resp["ContentLength"]))

    def read_current(self, bucket: str, key: str, length: int) -> tuple[Head, bytes] | None:
        """The current object under ``key`` and its first ``length`` bytes, from one ranged GET
        (a HEAD and a read of that version in one request); None when there is none (never
        written, deleted, or a delete marker on top). An empty object has no byte to range
        over (S3 answers 416): its HEAD, and no bytes; when the HEAD finds a newer object with
        bytes (written since), that object is read (If-Match: the bytes are the HEAD's)."""
        what = f"s3://{bucket}/{key}"
        try:
            resp = self._client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{length - 1}")
            data: bytes = resp["Body"].read()
        except ClientError as exc:
            if code(exc) == "InvalidRange":
                found = self.exists(bucket, key)
                if found is None or found.size == 0:
                    return None if found is None else (found, b"")
                ref = ObjectRef(
                    bucket=bucket,
                    key=key,
                    size=found.size,
                    etag=found.etag,
                    version_id=found.version_id,
                )
                return found, self.read_prefix(ref, length)
            if code(exc) in MISSING:
                return None
            raise translate(exc, what=what) from exc
        except Exception as exc:
            raise translate(exc, what=what) from exc
        return _head(resp, _total_size(resp.get("ContentRange"), len(data))), data

    def exists(self, bucket: str, key: str) -> Head | None:
        """The current object under ``key`` (a HEAD without VersionId); None when there is none
        (never written, deleted, or a delete marker on top)."""
        try:
            return self.head(ObjectRef(bucket=bucket, key=key, size=0))
        except SourceMissing:
            return None

    def read_prefix(self, ref: ObjectRef, length: int) -> bytes:
        """The first ``length`` bytes of the object (a ranged GET, never the whole object)."""
        return self.read_range(ref, 0, length)

    def read_range(self, ref: ObjectRef, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object (fewer at its end; one ranged GET)."""
        if end <= start:
            return b""
        try:
            resp = self._client.get_object(
                Bucket=ref.bucket,
                Key=ref.key,
                Range=f"bytes={start}-{end - 1}",
                **version_args(ref),
                **({"IfMatch": f'"{strip_etag(ref.etag)}"'} if ref.etag else {}),
            )
            data: bytes = resp["Body"].read()
        except Exception as exc:
            raise translate(exc, what=f"s3://{ref.bucket}/{ref.key}") from exc
        return data

    def open_stream(self, ref: ObjectRef) -> BinaryIO:
        """A streaming body over the object; read it in chunks. A network error while reading
        is raised as the workflow's error (e.g. StorageUnavailable), like every other call.
        An object of known size above two ranges is read as parallel ranged GETs
        (tasks.adapters.s3_ranged), as many in flight as the converter has cores to feed."""
        if ref.size is not None and ref.size > 2 * RANGE_BYTES:
            reader = RangedReader(
                self._client,
                ref,
                ref.size,
                range_bytes=RANGE_BYTES,
                parallel=parallel_for(cores.available()),
            )
            return cast(BinaryIO, io.BufferedReader(reader, buffer_size=1 << 20))
        try:
            resp = self._client.get_object(
                Bucket=ref.bucket,
                Key=ref.key,
                **version_args(ref),
                **({"IfMatch": f'"{strip_etag(ref.etag)}"'} if ref.etag else {}),
            )
        except Exception as exc:
            raise translate(exc, what=f"s3://{ref.bucket}/{ref.key}") from exc
        body = _TranslatedBody(resp["Body"], what=f"read s3://{ref.bucket}/{ref.key}")
        return cast(BinaryIO, body)

    def open_range(self, ref: ObjectRef, start: int, end: int) -> BinaryIO:
        """Bytes ``[start, end)`` of the object as a stream of parallel ranged GETs."""
        reader = RangedReader(
            self._client,
            ref,
            end,
            range_bytes=RANGE_BYTES,
            parallel=parallel_for(cores.available()),
            start=start,
        )
        return cast(BinaryIO, io.BufferedReader(reader, buffer_size=1 << 20))

    def assemble(
        self,
        bucket: str,
        key: str,
        parts: list[Part],
        *,
        content_type: str,
        metadata: dict[str, str],
    ) -> PendingCopy:
        """One object from byte ranges of others (tasks.multipart_layout's parts), invisible
        until completed (conditionally, under the fence); abort it otherwise."""
        return assemble_parts(self, bucket, key, parts, content_type, metadata)

    def writer(
        self,
        bucket: str,
        key: str,
        *,
        part_size: int,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> MultipartWriter:
        """An object written part by part; nothing is visible until ``complete`` (call
        ``abort`` on failure)."""
        return MultipartWriter(self._client, bucket, key, part_size, content_type, metadata)

    @contextmanager
    def multipart_writer(
        self, bucket: str, key: str, *, part_size: int, content_type: str
    ) -> Iterator[MultipartWriter]:
        """Write an object part by part; aborted (nothing visible) if the block raises."""
        writer = self.writer(bucket, key, part_size=part_size, content_type=content_type)
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        writer.complete()

    def copy(
        self,
        src: ObjectRef,
        dst_bucket: str,
        dst_key: str,
        *,
        if_match: str | None = None,
        metadata: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> PendingCopy:
        """Server-side copy of ``src`` (that version) to ``dst_key`` for any size. Nothing is
        visible until the returned copy is completed, which can be conditional on the
        destination; abort it otherwise. A source that fits one part (up to
        :data:`COPY_PART_BYTES`, most files) is copied by one CopyObject when completed; a larger
        one is a multipart copy whose parts are copied now, :data:`COPY_THREADS` at a time, each
        retried by the client's standard retry mode (a failed part never restarts the finished
        ones).

        ``if_match``: copy only while the source still has this eTag (else SourceChanged).
        """
        what = f"copy s3://{src.bucket}/{src.key}"
        extra: dict[str, Any] = {"Metadata": metadata or {}}
        if content_type:
            extra["ContentType"] = content_type
        if src.size <= COPY_PART_BYTES:
            return PendingCopy(self, dst_bucket, dst_key, None, [], extra, what, src, if_match)
        try:
            upload_id = str(
                self._client.create_multipart_upload(Bucket=dst_bucket, Key=dst_key, **extra)[
                    "UploadId"
                ]
            )
        except Exception as exc:
            raise translate(exc, what=what) from exc
        pending = PendingCopy(self, dst_bucket, dst_key, upload_id, [], extra, what)
        try:
            pending.parts = self._copy_parts(src, dst_bucket, dst_key, upload_id, if_match, what)
        except BaseException:
            pending.abort()
            raise
        return pending

    def _copy_parts(
        self,
        src: ObjectRef,
        dst_bucket: str,
        dst_key: str,
        upload_id: str,
        if_match: str | None,
        what: str,
    ) -> list[dict[str, Any]]:
        part_size = s3_limits.part_size(src.size, COPY_PART_BYTES)
        ranges = [
            (number, start, min(start + part_size, src.size) - 1)
            for number, start in enumerate(range(0, src.size, part_size), start=1)
        ]
        source: dict[str, str] = {"Bucket": src.bucket, "Key": src.key, **version_args(src)}
        conditions = {"CopySourceIfMatch": f'"{strip_etag(if_match)}"'} if if_match else {}

        def copy_part(part: tuple[int, int, int]) -> dict[str, Any]:
            number, first, last = part
            try:
                resp = self._client.upload_part_copy(
                    Bucket=dst_bucket,
                    Key=dst_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={first}-{last}",
                    **conditions,
                )
            except Exception as exc:
                raise translate(exc, what=what) from exc
            return {"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]}

        if len(ranges) == 1:
            return [copy_part(ranges[0])]
        with ThreadPoolExecutor(max_workers=min(COPY_THREADS, len(ranges))) as pool:
            return list(pool.map(copy_part, ranges))

    def put_bytes(
        self,
        bucket: str,
        key: str,
        body: bytes,
        extra: dict[str, Any],
        condition: Condition | None,
        what: str,
    ) -> None:
        """One PUT of ``body`` (``extra``: ContentType, Metadata...), under ``condition``."""
        try:
            self._client.put_object(
                Bucket=bucket, Key=key, Body=body, **extra, **conditions(condition)
            )
        except Exception as exc:
            raise translate_write(exc, what=what) from exc

    def delete_if_current(self, ref: ObjectRef) -> bool:
        """Delete the current object under ``ref.key`` only while it is ``ref`` (If-Match on its
        eTag, no VersionId: in a versioned bucket this puts a delete marker on top, so no older
        version resurfaces). False when another object is current, or none."""
        if not ref.etag:
            return False
        try:
            self._client.delete_object(
                Bucket=ref.bucket, Key=ref.key, IfMatch=f'"{strip_etag(ref.etag)}"'
            )
        except ClientError as exc:
            if code(exc) in CONFLICT | MISSING:
                return False
            raise translate(exc, what=f"delete s3://{ref.bucket}/{ref.key}") from exc
        except Exception as exc:
            raise translate(exc, what=f"delete s3://{ref.bucket}/{ref.key}") from exc
        return True

    def delete_stamped(self, bucket: str, key: str, condition: Condition) -> None:
        """Delete the object under ``key`` while it has the ETag ``condition`` names
        (WriteConflict otherwise)."""
        what = f"delete s3://{bucket}/{key}"
        try:
            self._client.delete_object(Bucket=bucket, Key=key, **conditions(condition))
        except Exception as exc:
            error = translate_write(exc, what=what)
            if isinstance(error, SourceMissing):
                return
            raise error from exc

    def delete(self, ref: ObjectRef) -> None:
        try:
            self._client.delete_object(Bucket=ref.bucket, Key=ref.key, **version_args(ref))
        except Exception as exc:
            raise translate(exc, what=f"delete s3://{ref.bucket}/{ref.key}") from exc

    def delete_prefix(self, bucket: str, prefix: str, *, keep: frozenset[str] = frozenset()) -> int:
        """Delete every object under ``prefix`` (chute's own working objects) but the keys in
        ``keep``; how many."""
        if not prefix:
            raise ValueError("refusing to delete a whole bucket")
        deleted = 0
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                listed = (o["Key"] for o in page.get("Contents", []))
                batch = [{"Key": key} for key in listed if key not in keep]
                if batch:
                    self._client.delete_objects(
                        Bucket=bucket, Delete={"Objects": batch, "Quiet": True}
                    )
                    deleted += len(batch)
        except Exception as exc:
            raise translate(exc, what=f"delete s3://{bucket}/{prefix}*") from exc
        return deleted

    def get_json(self, bucket: str, key: str) -> Any | None:
        """The JSON document at ``key``; None if there is none (or it isn't JSON)."""
        try:
            body = self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            error = translate(exc, what=f"get s3://{bucket}/{key}")
            if isinstance(error, SourceMissing):
                return None
            if error is exc:
                raise
            raise error from exc
        try:
            return json.loads(body)
        except ValueError:
            return None

    def put_json(
        self,
        bucket: str,
        key: str,
        document: Any,
        *,
        metadata: dict[str, str] | None = None,
        condition: Condition | None = None,
    ) -> None:
        """Write a JSON document (conditionally: WriteConflict when ``condition`` fails)."""
        body = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")
        extra: dict[str, Any] = {"ContentType": "application/json", "Metadata": metadata or {}}
        self.put_bytes(bucket, key, body, extra, condition, f"put s3://{bucket}/{key}")


class _TranslatedBody(io.RawIOBase):
    """A response body whose read errors come out translated (:func:`translate`)."""

    def __init__(self, body: Any, *, what: str) -> None:
        self._body = body
        self._what = what

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            data: bytes = self._body.read(None if size is None or size < 0 else size)
        except Exception as exc:
            error = translate(exc, what=self._what)
            if error is exc:
                raise
            raise error from exc
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def close(self) -> None:
        with suppress(Exception):
            self._body.close()
        super().close()


def _head(resp: dict[str, Any], size: int) -> Head:
    """What a HeadObject (or GetObject) response says of the object, given its ``size``."""
    return Head(
        size=size,
        etag=strip_etag(resp.get("ETag", "")),
        version_id=resp.get("VersionId"),
        metadata={str(k).lower(): str(v) for k, v in (resp.get("Metadata") or {}).items()},
        content_type=resp.get("ContentType"),
        last_modified=upload_time(resp.get("LastModified")),
    )


def _total_size(content_range: str | None, received: int) -> int:
    """The object's size from a ranged GET's ``Content-Range`` (``bytes 0-99/1234``); without
    one the whole object came back (``received`` bytes)."""
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    return received
