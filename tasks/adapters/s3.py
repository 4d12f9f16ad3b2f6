"""S3 access for the tasks: streaming reads, multipart writes, managed copies.

AWS errors are translated by error code (never by message) into the workflow's error contract and
chained (``raise X from exc``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tasks.errors import SourceChanged, SourceMissing, StorageUnavailable
from tasks.models import ObjectRef

_MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchVersion", "NoSuchBucket"}
_CHANGED = {"PreconditionFailed", "412"}
_TRANSIENT = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "500",
    "502",
    "503",
    "504",
}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception, *, what: str) -> Exception:
    """Map a boto error to chute's error contract; unknown errors are returned unchanged."""
    if isinstance(exc, ClientError):
        code = _code(exc)
        if code in _MISSING:
            return SourceMissing(f"{what}: not found ({code})")
        if code in _CHANGED:
            return SourceChanged(f"{what}: object changed since the event ({code})")
        if code in _TRANSIENT:
            return StorageUnavailable(f"{what}: S3 answered {code}")
    if isinstance(exc, BotoCoreError):
        return StorageUnavailable(f"{what}: {type(exc).__name__}")
    return exc


def default_client() -> Any:
    """A client with standard retry mode; the endpoint comes from AWS_ENDPOINT_URL when set."""
    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


@dataclass(frozen=True)
class Head:
    size: int
    etag: str
    version_id: str | None


def _strip_etag(etag: str) -> str:
    return etag.strip('"')


def _version_args(ref: ObjectRef) -> dict[str, str]:
    return {"VersionId": ref.version_id} if ref.version_id else {}


class S3Store:
    """The tasks' port to S3."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client or default_client()

    @property
    def client(self) -> Any:
        return self._client

    def head(self, ref: ObjectRef) -> Head:
        try:
            resp = self._client.head_object(Bucket=ref.bucket, Key=ref.key, **_version_args(ref))
        except Exception as exc:
            raise translate(exc, what=f"s3://{ref.bucket}/{ref.key}") from exc
        return Head(
            size=int(resp["ContentLength"]),
            etag=_strip_etag(resp.get("ETag", "")),
            version_id=resp.get("VersionId"),
        )

    def exists(self, bucket: str, key: str) -> Head | None:
        try:
            return self.head(ObjectRef(bucket=bucket, key=key, size=0))
        except SourceMissing:
            return None

    def read_prefix(self, ref: ObjectRef, length: int) -> bytes:
        """The first ``length`` bytes of the object (a ranged GET, never the whole object)."""
        if length <= 0:
            return b""
        try:
            resp = self._client.get_object(
                Bucket=ref.bucket,
                Key=ref.key,
                Range=f"bytes=0-{length - 1}",
                **_version_args(ref),
                **({"IfMatch": f'"{_strip_etag(ref.etag)}"'} if ref.etag else {}),
            )
            data: bytes = resp["Body"].read()
        except Exception as exc:
            raise translate(exc, what=f"s3://{ref.bucket}/{ref.key}") from exc
        return data

    def open_stream(self, ref: ObjectRef) -> BinaryIO:
        """A streaming body over the object; read it in chunks."""
        try:
            resp = self._client.get_object(
                Bucket=ref.bucket,
                Key=ref.key,
                **_version_args(ref),
                **({"IfMatch": f'"{_strip_etag(ref.etag)}"'} if ref.etag else {}),
            )
        except Exception as exc:
            raise translate(exc, what=f"s3://{ref.bucket}/{ref.key}") from exc
        body: BinaryIO = resp["Body"]
        return body

    @contextmanager
    def multipart_writer(
        self, bucket: str, key: str, *, part_size: int, content_type: str
    ) -> Iterator[MultipartWriter]:
        """Write an object part by part; aborted (nothing visible) if the block raises."""
        writer = MultipartWriter(self._client, bucket, key, part_size, content_type)
        try:
            yield writer
        except BaseException:
            writer.abort()
            raise
        writer.complete()

    def copy(
        self, src: ObjectRef, dst_bucket: str, dst_key: str, *, if_match: str | None = None
    ) -> None:
        """Managed copy (multipart above the threshold, so objects over 5 GB work).

        ``if_match``: copy only while the source still has this eTag (else SourceChanged). Sent
        quoted, as HTTP wants it: the managed copy checks it with a HeadObject too, and moto's
        HeadObject only matches the quoted form.
        """
        source: dict[str, str] = {"Bucket": src.bucket, "Key": src.key, **_version_args(src)}
        extra = {"CopySourceIfMatch": f'"{_strip_etag(if_match)}"'} if if_match else None
        try:
            self._client.copy(
                source,
                dst_bucket,
                dst_key,
                ExtraArgs=extra,
                Config=TransferConfig(multipart_threshold=64 * 1024 * 1024),
            )
        except Exception as exc:
            raise translate(exc, what=f"copy s3://{src.bucket}/{src.key}") from exc

    def delete(self, ref: ObjectRef) -> None:
        try:
            self._client.delete_object(Bucket=ref.bucket, Key=ref.key, **_version_args(ref))
        except Exception as exc:
            raise translate(exc, what=f"delete s3://{ref.bucket}/{ref.key}") from exc

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

    def put_json(self, bucket: str, key: str, document: dict[str, Any]) -> None:
        body = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")
        try:
            self._client.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType="application/json"
            )
        except Exception as exc:
            raise translate(exc, what=f"put s3://{bucket}/{key}") from exc


class MultipartWriter:
    """Buffers at most one part in memory; uploads each full part as it fills."""

    def __init__(self, client: Any, bucket: str, key: str, part_size: int, content_type: str):
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._content_type = content_type
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.bytes_written += len(data)
        while len(self._buffer) >= self._part_size:
            chunk = bytes(self._buffer[: self._part_size])
            del self._buffer[: self._part_size]
            self._upload_part(chunk)

    def _start(self) -> str:
        if self._upload_id is None:
            try:
                resp = self._client.create_multipart_upload(
                    Bucket=self._bucket, Key=self._key, ContentType=self._content_type
                )
            except Exception as exc:
                raise translate(exc, what=f"write s3://{self._bucket}/{self._key}") from exc
            self._upload_id = str(resp["UploadId"])
        return self._upload_id

    def _upload_part(self, chunk: bytes) -> None:
        upload_id = self._start()
        number = len(self._parts) + 1
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
        self._parts.append({"PartNumber": number, "ETag": resp["ETag"]})

    def complete(self) -> None:
        try:
            if self._upload_id is None:
                # Small output: one plain PUT is cheaper than a one-part multipart upload.
                self._client.put_object(
                    Bucket=self._bucket,
                    Key=self._key,
                    Body=bytes(self._buffer),
                    ContentType=self._content_type,
                )
                return
            if self._buffer:
                self._upload_part(bytes(self._buffer))
                self._buffer.clear()
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        except Exception as exc:
            raise translate(exc, what=f"write s3://{self._bucket}/{self._key}") from exc

    def abort(self) -> None:
        if self._upload_id is None:
            return
        # If the abort fails too, the bucket's lifecycle rule removes the parts after a day.
        with suppress(ClientError, BotoCoreError):
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
            )
