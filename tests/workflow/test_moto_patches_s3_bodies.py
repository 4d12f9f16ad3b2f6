"""S3 object bodies (chute/local/moto_patches/s3_bodies.py): kept in files, streamed in chunks.

How these tests go: tests/support/moto_patches.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chute.local import moto_patches
from chute.local.moto_patches import s3_bodies
from tests.support.moto_patches import without

# --- bounded memory: s3-key-file-body, s3-multipart-complete, s3-get-object-streaming,
#     s3-upload-part-copy-range, s3-copy-object-streaming ---------------------------------------
BIG = 12 * 1024 * 1024  # over SMALL_BODY_BYTES (kept in a file), two parts over 5 MiB


def _body(size: int) -> bytes:
    return bytes(range(256)) * (size // 256) + b"x" * (size % 256)


def _probe_key(key: str) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends["123456789012"]["aws"].get_bucket("probe-bucket").keys.get(key)


def _in_a_file(key: Any) -> bool:
    import tempfile

    return not isinstance(key._value_buffer, tempfile.SpooledTemporaryFile)


def _big_multipart(s3: Any, key: str, data: bytes) -> None:
    upload = s3.create_multipart_upload(Bucket="probe-bucket", Key=key)
    half = len(data) // 2
    parts = []
    for number, chunk in ((1, data[:half]), (2, data[half:])):
        part = s3.upload_part(
            Bucket="probe-bucket",
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=chunk,
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    s3.complete_multipart_upload(
        Bucket="probe-bucket",
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )


def test_a_key_adopts_a_body_in_a_file() -> None:
    import tempfile

    from moto.s3.models import FakeKey

    file = tempfile.TemporaryFile()  # noqa: SIM115 - the key owns it
    file.write(b"abc")
    key = FakeKey("k", s3_bodies.FileBody(file, 3), "123456789012", "us-east-1")  # type: ignore[arg-type]
    assert key.value == b"abc"
    assert key._value_buffer is file


@pytest.mark.canary
def test_canary_a_key_still_copies_every_body_through_memory() -> None:
    from moto.s3.models import FakeKey

    with without("s3-key-file-body"), pytest.raises(TypeError):
        FakeKey("k", s3_bodies.FileBody(None, 3), "123456789012", "us-east-1")  # type: ignore[arg-type]


def test_multipart_completion_streams_the_parts_to_a_file(probe: dict[str, Any]) -> None:
    data = _body(BIG)
    _big_multipart(probe["s3"], "big-multipart", data)
    assert _in_a_file(_probe_key("big-multipart"))
    got = probe["s3"].get_object(Bucket="probe-bucket", Key="big-multipart", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ETag"].endswith('-2"')


@pytest.mark.canary
def test_canary_multipart_completion_still_joins_the_parts_in_memory() -> None:
    from moto.s3.models import FakeMultipart

    upload = FakeMultipart("k", {}, "123456789012", "us-east-1")  # type: ignore[arg-type]
    part = upload.set_part(1, b"abc")
    complete = moto_patches.FIXES["s3-multipart-complete"].current_original()
    value, _, _ = complete(upload, iter([(1, part.etag)]))
    assert isinstance(value, bytes)


def test_get_object_streams_the_body_in_chunks(
    probe: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _body(BIG)
    _big_multipart(probe["s3"], "big-get", data)
    served: list[int] = []
    chunks = s3_bodies.key_chunks

    def spy(key: Any, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        for chunk in chunks(key, start, stop):
            served.append(len(chunk))
            yield chunk

    monkeypatch.setattr(s3_bodies, "key_chunks", spy)
    assert probe["s3"].get_object(Bucket="probe-bucket", Key="big-get")["Body"].read() == data
    ranged = probe["s3"].get_object(Bucket="probe-bucket", Key="big-get", Range="bytes=10-19")
    assert ranged["Body"].read() == data[10:20]
    assert ranged["ContentRange"] == f"bytes 10-19/{len(data)}"
    assert max(served) <= s3_bodies.CHUNK_BYTES and sum(served) == len(data) + 10


@pytest.mark.canary
def test_canary_get_object_still_reads_the_whole_body(probe: dict[str, Any]) -> None:
    from moto.s3.models import FakeKey

    probe["s3"].put_object(Bucket="probe-bucket", Key="get-canary", Body=b"abc")
    reads: list[int] = []
    getter = FakeKey.value.fget  # type: ignore[attr-defined]

    def counting(self: Any) -> bytes:
        value: bytes = getter(self)
        reads.append(len(value))
        return value

    with without("s3-get-object-streaming"):
        fix = moto_patches.FIXES["s3-key-file-body"]
        fix.revert()
        FakeKey.value = property(counting)  # type: ignore[assignment,method-assign]
        try:
            probe["s3"].get_object(Bucket="probe-bucket", Key="get-canary")["Body"].read()
        finally:
            FakeKey.value = fix.original  # type: ignore[method-assign]
            fix.apply()
    assert reads == [3]


def test_upload_part_copy_reads_only_its_range(
    probe: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = probe["s3"]
    data = _body(BIG)
    _big_multipart(s3, "copy-source", data)
    ranges: list[tuple[int, int | None]] = []
    chunks = s3_bodies.key_chunks

    def spy(key: Any, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        if key.name == "copy-source":
            ranges.append((start, stop))
        return chunks(key, start, stop)

    monkeypatch.setattr(s3_bodies, "key_chunks", spy)
    upload = s3.create_multipart_upload(Bucket="probe-bucket", Key="copy-dest")
    half = len(data) // 2
    parts = []
    for number, (start, end) in enumerate(((0, half - 1), (half, len(data) - 1)), start=1):
        part = s3.upload_part_copy(
            Bucket="probe-bucket",
            Key="copy-dest",
            UploadId=upload["UploadId"],
            PartNumber=number,
            CopySource={"Bucket": "probe-bucket", "Key": "copy-source"},
            CopySourceRange=f"bytes={start}-{end}",
        )
        parts.append({"PartNumber": number, "ETag": part["CopyPartResult"]["ETag"]})
    s3.complete_multipart_upload(
        Bucket="probe-bucket",
        Key="copy-dest",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    assert ranges == [(0, len(data) // 2), (len(data) // 2, len(data))]
    assert s3.get_object(Bucket="probe-bucket", Key="copy-dest")["Body"].read() == data


@pytest.mark.canary
def test_canary_upload_part_copy_still_reads_the_whole_source(probe: dict[str, Any]) -> None:
    from moto.s3.models import FakeKey

    probe["s3"].put_object(Bucket="probe-bucket", Key="upc-canary", Body=b"abcdef")
    upload = probe["s3"].create_multipart_upload(Bucket="probe-bucket", Key="upc-dest")
    reads: list[int] = []
    fix = moto_patches.FIXES["s3-key-file-body"]
    getter = FakeKey.value.fget  # type: ignore[attr-defined]

    def counting(self: Any) -> bytes:
        value: bytes = getter(self)
        reads.append(len(value))
        return value

    with without("s3-upload-part-copy-range"):
        fix.revert()
        FakeKey.value = property(counting, fix.original.fset)  # type: ignore[assignment,method-assign]
        try:
            probe["s3"].upload_part_copy(
                Bucket="probe-bucket",
                Key="upc-dest",
                UploadId=upload["UploadId"],
                PartNumber=1,
                CopySource={"Bucket": "probe-bucket", "Key": "upc-canary"},
                CopySourceRange="bytes=0-1",
            )
        finally:
            FakeKey.value = fix.original  # type: ignore[method-assign]
            fix.apply()
    assert 6 in reads  # the whole source, for a part of 2 bytes


def test_copy_object_spools_a_large_source_to_a_file(probe: dict[str, Any]) -> None:
    data = _body(BIG)
    _big_multipart(probe["s3"], "cp-source", data)
    probe["s3"].copy_object(
        Bucket="probe-bucket",
        Key="cp-dest",
        CopySource={"Bucket": "probe-bucket", "Key": "cp-source"},
    )
    assert _in_a_file(_probe_key("cp-dest"))
    assert probe["s3"].get_object(Bucket="probe-bucket", Key="cp-dest")["Body"].read() == data


@pytest.mark.canary
def test_canary_copy_object_still_passes_the_whole_value(probe: dict[str, Any]) -> None:
    from moto.s3.models import s3_backends

    probe["s3"].put_object(Bucket="probe-bucket", Key="cp-canary", Body=b"abc")
    backend = s3_backends["123456789012"]["aws"]
    seen: list[Any] = []
    put = type(backend).put_object

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("value"))
        return put(self, *args, **kwargs)

    with without("s3-copy-object-streaming"):
        type(backend).put_object = spy  # type: ignore[method-assign]
        try:
            copy = moto_patches.FIXES["s3-copy-object-streaming"].current_original()
            copy(backend, _probe_key("cp-canary"), "probe-bucket", "cp-canary-dest")
        finally:
            type(backend).put_object = put  # type: ignore[method-assign]
    assert seen == [b"abc"]
