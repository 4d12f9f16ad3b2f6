"""One S3 object from byte ranges of others: the parts of tasks.multipart_layout, copied
server-side (UploadPartCopy) or read and uploaded, several at once. Nothing is visible until the
returned :class:`PendingCopy` is completed (conditionally: tasks.fence); abort it otherwise."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tasks.adapters.s3_errors import translate
from tasks.adapters.s3_multipart import CopyStore, PendingCopy
from tasks.multipart_layout import Copy, Part, Upload

PARALLEL = 8
"""Parts in flight: copies take no memory here, an upload at most ~10 MiB."""


def assemble_parts(
    store: CopyStore,
    bucket: str,
    key: str,
    parts: list[Part],
    content_type: str,
    metadata: dict[str, str],
) -> PendingCopy:
    what = f"assemble s3://{bucket}/{key}"
    extra: dict[str, Any] = {"ContentType": content_type, "Metadata": metadata}
    client = store.client
    if all(isinstance(p, Upload) and p.size == 0 for p in parts):
        return PendingCopy(store, bucket, key, None, [], extra, what)
    try:
        upload_id = str(client.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"])
    except Exception as exc:
        raise translate(exc, what=what) from exc
    pending = PendingCopy(store, bucket, key, upload_id, [], extra, what)

    def send(numbered: tuple[int, Part]) -> dict[str, Any]:
        number, part = numbered
        try:
            if isinstance(part, Copy):
                piece = part.piece
                resp = client.upload_part_copy(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": bucket, "Key": piece.key},
                    CopySourceRange=f"bytes={piece.start}-{piece.end - 1}",
                )
                return {"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]}
            body = b"".join(_read(client, bucket, p.key, p.start, p.end) for p in part.pieces)
            resp = client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body + part.tail
            )
            return {"PartNumber": number, "ETag": resp["ETag"]}
        except Exception as exc:
            raise translate(exc, what=what) from exc

    try:
        with ThreadPoolExecutor(max_workers=min(PARALLEL, len(parts))) as pool:
            pending.parts = list(pool.map(send, enumerate(parts, start=1)))
    except BaseException:
        pending.abort()
        raise
    return pending


def _read(client: Any, bucket: str, key: str, start: int, end: int) -> bytes:
    if end <= start:
        return b""
    resp = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")
    data: bytes = resp["Body"].read()
    return data
