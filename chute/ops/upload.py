"""``chute upload``: multipart uploads to staging that S3 verifies part by part and that resume.

Every part is sent with its Content-MD5 and SHA-256 (S3 rejects a part whose bytes don't match).
An interrupted upload of the same file to the same key is found with ListMultipartUploads; the
parts already there are kept when their checksum (SHA-256 where S3 reports it, else the part's
ETag, the MD5 of its bytes with S3-managed encryption) matches the local file's part, and only
the missing or different parts are sent.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks import s3_limits
from tasks.settings import DEFAULT_PART_SIZE_BYTES

Progress = Callable[[int], None]


class NothingUploaded(Exception):
    """A multipart upload was to be completed, but none of its parts reached S3."""


class UploadInterrupted(Exception):
    """Stopped on purpose (tests, Ctrl-C); the parts sent so far stay for a resume."""


@dataclass(frozen=True)
class UploadResult:
    key: str
    etag: str
    size: int
    parts: int
    parts_sent: int
    resumed: bool


def _digests(data: bytes) -> tuple[str, str, str]:
    md5 = hashlib.md5(data, usedforsecurity=False)
    sha = hashlib.sha256(data).digest()
    return md5.hexdigest(), base64.b64encode(md5.digest()).decode(), base64.b64encode(sha).decode()


def _read_part(path: Path, number: int, part_size: int) -> bytes:
    with path.open("rb") as f:
        f.seek((number - 1) * part_size)
        return f.read(part_size)


def _existing_upload(s3: Any, bucket: str, key: str) -> str | None:
    """The newest in-progress multipart upload to exactly this key."""
    newest: tuple[Any, str] | None = None
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key):
        for upload in page.get("Uploads", []):
            if upload["Key"] == key and (newest is None or upload["Initiated"] > newest[0]):
                newest = (upload["Initiated"], upload["UploadId"])
    return newest[1] if newest else None


def _uploaded_parts(s3: Any, bucket: str, key: str, upload_id: str) -> dict[int, dict[str, Any]]:
    parts: dict[int, dict[str, Any]] = {}
    for page in s3.get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=upload_id):
        for part in page.get("Parts", []):
            parts[int(part["PartNumber"])] = part
    return parts


def upload_file(
    s3: Any,
    path: Path,
    bucket: str,
    key: str,
    *,
    part_size: int = DEFAULT_PART_SIZE_BYTES,
    concurrency: int = 4,
    progress: Progress | None = None,
    stop_after_parts: int | None = None,
) -> UploadResult:
    """Upload ``path`` to ``bucket/key``; resumes an interrupted upload of the same content."""
    size = path.stat().st_size
    part = s3_limits.part_size(size, part_size)
    count = max(1, -(-size // part))
    upload_id = _existing_upload(s3, bucket, key)
    resumed = upload_id is not None
    existing: dict[int, dict[str, Any]] = {}
    if upload_id is not None:
        existing = _uploaded_parts(s3, bucket, key, upload_id)
    else:
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")[
            "UploadId"
        ]
    sender = _Parts(s3, path, bucket, key, upload_id, part, existing, progress, stop_after_parts)
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    futures = [pool.submit(sender.send, n) for n in range(1, count + 1)]
    try:
        for future in futures:
            future.result()
    except BaseException:
        # Ctrl-C or a failed part: parts not started yet are dropped, the ones in flight
        # finish (at most ``concurrency``); the multipart upload stays, to be resumed
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    result = s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": sender.done[n]} for n in sorted(sender.done)],
        },
    )
    return UploadResult(
        key=key,
        etag=str(result.get("ETag", "")).strip('"'),
        size=size,
        parts=count,
        parts_sent=sender.sent,
        resumed=resumed,
    )


@dataclass
class _Parts:
    """Sends the parts of one upload (from several threads), skipping those S3 already holds with
    the same content (a resumed upload)."""

    s3: Any
    path: Path
    bucket: str
    key: str
    upload_id: str
    part_size: int
    existing: dict[int, dict[str, Any]]
    progress: Progress | None
    stop_after_parts: int | None
    done: dict[int, str] = field(default_factory=dict)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, number: int) -> None:
        data = _read_part(self.path, number, self.part_size)
        md5_hex, md5_b64, sha_b64 = _digests(data)
        have = self.existing.get(number)
        if have is not None and int(have.get("Size", -1)) == len(data):
            same = (
                have.get("ChecksumSHA256") == sha_b64
                if have.get("ChecksumSHA256")
                else have["ETag"].strip('"') == md5_hex
            )
            if same:
                self._done(number, have["ETag"], len(data))
                return
        with self.lock:
            if self.stop_after_parts is not None and self.sent >= self.stop_after_parts:
                raise UploadInterrupted(f"stopped after {self.sent} parts")
            self.sent += 1
        response = self.s3.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
            ContentMD5=md5_b64,
            ChecksumSHA256=sha_b64,
        )
        self._done(number, response["ETag"], len(data))

    def _done(self, number: int, etag: str, size: int) -> None:
        with self.lock:
            self.done[number] = etag
        if self.progress:
            self.progress(size)


def start_presigned(
    s3: Any,
    presign: Callable[[str, dict[str, Any]], str],
    bucket: str,
    key: str,
    *,
    content_type: str,
    size: int,
    part_size: int,
) -> dict[str, Any]:
    """Start a multipart upload that someone else sends (a browser): one presigned UploadPart
    URL per part (``presign(operation, params)``), parts sized by the one rule (s3_limits).
    Returns ``{bucket, key, uploadId, partSize, parts: [{number, url}]}``; complete it with
    :func:`complete_listed`."""
    part = s3_limits.part_size(size, part_size)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)[
        "UploadId"
    ]
    params = {"Bucket": bucket, "Key": key, "UploadId": upload_id}
    parts = [
        {"number": n, "url": presign("upload_part", {**params, "PartNumber": n})}
        for n in range(1, max(1, -(-size // part)) + 1)
    ]
    return {"bucket": bucket, "key": key, "uploadId": upload_id, "partSize": part, "parts": parts}


def complete_listed(s3: Any, bucket: str, key: str, upload_id: str) -> int:
    """Complete a multipart upload with the parts S3 holds (ListParts: a browser need not read
    ETags, which cross-origin responses may not expose); the number of parts. NothingUploaded
    when no part arrived; S3's errors (NoSuchUpload, InvalidPart, ...) as ClientError."""
    parts = _uploaded_parts(s3, bucket, key, upload_id)
    if not parts:
        raise NothingUploaded("no part of this upload reached S3")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": parts[n]["ETag"]} for n in sorted(parts)]
        },
    )
    return len(parts)
