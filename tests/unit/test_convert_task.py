"""The convert step on moto S3: domain.convert (streaming, multipart) and the Lambda handler."""

from __future__ import annotations

import gzip
import importlib
import io
import json
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import pytest
from botocore.exceptions import ReadTimeoutError

from tasks import names
from tasks.adapters.s3 import S3Store
from tasks.convert import handler as handler_module
from tasks.convert.domain import convert
from tasks.errors import MalformedContent, SourceChanged, SourceMissing, StorageUnavailable
from tasks.models import Compression, FileSpec, InputFormat, ModelError, ObjectRef, Plan, Target
from tasks.settings import MIN_PART_SIZE_BYTES, ConvertSettings, SettingsError
from tests.unit.conftest import OUTPUT, STAGING, fresh

SMALL_PARTS = ConvertSettings(part_size_bytes=MIN_PART_SIZE_BYTES)  # 5 MiB, S3's minimum


@pytest.fixture(autouse=True)
def fresh_handler_caches() -> Iterator[None]:
    with fresh(handler_module.settings, handler_module.store):
        yield


def upload(
    client: Any,
    key: str,
    body: bytes,
    fmt: InputFormat = "csv",
    compression: Compression = "none",
) -> FileSpec:
    client.put_object(Bucket=STAGING, Key=key, Body=body)
    head = client.head_object(Bucket=STAGING, Key=key)
    ref = ObjectRef(
        bucket=STAGING, key=key, size=head["ContentLength"], etag=head["ETag"].strip('"')
    )
    return FileSpec(ref=ref, format=fmt, compression=compression)


def plan_for(file: FileSpec, target_key: str) -> Plan:
    return Plan(file=file, target=Target(bucket=OUTPUT, key=target_key))


def read_output(client: Any, key: str) -> bytes:
    body: bytes = client.get_object(Bucket=OUTPUT, Key=key)["Body"].read()
    return body


def output_keys(client: Any) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=OUTPUT).get("Contents", [])]


def pending_uploads(client: Any) -> list[Any]:
    uploads: list[Any] = client.list_multipart_uploads(Bucket=OUTPUT).get("Uploads", [])
    return uploads


def big_csv(rows: int) -> bytes:
    """Rows whose JSON lines are ~170 bytes each: 75,000 rows -> ~12.6 MB of output."""
    padding = "p" * 120
    lines = [f"{i},name {i},{padding}\n" for i in range(rows)]
    return ("id,name,padding\n" + "".join(lines)).encode()


def big_jsonl(rows: int) -> bytes:
    padding = "p" * 120
    return "".join(
        f'{{"id":"{i}","name":"name {i}","padding":"{padding}"}}\n' for i in range(rows)
    ).encode()


def count_calls(client: Any, operation: str) -> list[int]:
    calls: list[int] = []
    client.meta.events.register(f"before-call.s3.{operation}", lambda **_: calls.append(1))
    return calls


# --- domain ---------------------------------------------------------------------------------


def test_small_file_is_converted_to_the_target(s3: Any) -> None:
    # GIVEN a small CSV in staging
    file = upload(s3, "in/orders.csv", b'id,item\n1,"pen, blue"\n2,\n')
    # WHEN converted
    output = convert(plan_for(file, "in/orders.csv.jsonl"), S3Store(s3), SMALL_PARTS)
    # THEN the target holds exact JSON Lines and Output describes it
    expected = b'{"id":"1","item":"pen, blue"}\n{"id":"2","item":""}\n'
    assert read_output(s3, "in/orders.csv.jsonl") == expected
    assert output.to_dict() == {
        "bucket": OUTPUT,
        "key": "in/orders.csv.jsonl",
        "format": "jsonl",
        "rows": 2,
        "bytes": len(expected),
    }
    head = s3.head_object(Bucket=OUTPUT, Key="in/orders.csv.jsonl")
    assert head["ContentType"] == "application/x-ndjson"


def test_large_output_is_written_in_several_multipart_parts(s3: Any) -> None:
    # GIVEN a CSV whose JSON Lines output exceeds two 5 MiB parts
    rows = 75_000
    file = upload(s3, "in/big.csv", big_csv(rows))
    parts = count_calls(s3, "UploadPart")
    # WHEN converted with the minimum part size
    output = convert(plan_for(file, "in/big.csv.jsonl"), S3Store(s3), SMALL_PARTS)
    # THEN it went up as 3 parts and the object is exactly the expected output
    expected = big_jsonl(rows)
    assert len(expected) > 2 * MIN_PART_SIZE_BYTES
    assert len(parts) == 3
    assert read_output(s3, "in/big.csv.jsonl") == expected
    assert (output.rows, output.bytes) == (rows, len(expected))
    assert pending_uploads(s3) == []


def test_failure_midway_leaves_no_object_and_no_pending_upload(s3: Any) -> None:
    # GIVEN a file whose last row is ragged, after more than one part of good output
    body = big_csv(75_000) + b"75000,too,many,fields\n"
    file = upload(s3, "in/broken.csv", body)
    parts = count_calls(s3, "UploadPart")
    # WHEN converted
    with pytest.raises(MalformedContent, match=r"row 75002 .*expected 3 fields .* found 4"):
        convert(plan_for(file, "in/broken.csv.jsonl"), S3Store(s3), SMALL_PARTS)
    # THEN parts had been uploaded, yet the upload was aborted: nothing is visible or pending
    assert len(parts) >= 2
    assert pending_uploads(s3) == []
    assert output_keys(s3) == []


def test_gzip_source(s3: Any) -> None:
    file = upload(s3, "in/g.tsv.gz", gzip.compress(b"a\tb\n1\t2\n"), "tsv", "gzip")
    output = convert(plan_for(file, "in/g.tsv.jsonl"), S3Store(s3), SMALL_PARTS)
    assert read_output(s3, "in/g.tsv.jsonl") == b'{"a":"1","b":"2"}\n'
    assert output.rows == 1


@pytest.mark.parametrize(
    "key",
    [
        "in/daily report 2024.csv",
        "in/città/résumé ü.csv",
        "in/a+b=c.csv",
        "in/100% done %2F.csv",
        "in/mixed ü+%20 &.csv",
    ],
)
def test_keys_with_spaces_unicode_plus_and_percent(s3: Any, key: str) -> None:
    # GIVEN a source key with characters that URL encoding treats specially
    file = upload(s3, key, b"k\nv\n")
    target_key = f"{key}.jsonl"
    # WHEN converted
    convert(plan_for(file, target_key), S3Store(s3), SMALL_PARTS)
    # THEN the target exists under exactly that key
    assert output_keys(s3) == [target_key]
    assert read_output(s3, target_key) == b'{"k":"v"}\n'


def test_header_only_file_writes_an_empty_object(s3: Any) -> None:
    file = upload(s3, "in/empty.csv", b"a,b\n")
    output = convert(plan_for(file, "in/empty.csv.jsonl"), S3Store(s3), SMALL_PARTS)
    assert (output.rows, output.bytes) == (0, 0)
    assert read_output(s3, "in/empty.csv.jsonl") == b""


def test_missing_source_is_stale(s3: Any) -> None:
    # GIVEN a plan for an object that was deleted since validation
    file = upload(s3, "in/gone.csv", b"a\n1\n")
    s3.delete_object(Bucket=STAGING, Key="in/gone.csv")
    # WHEN converted THEN SourceMissing, and nothing is written
    with pytest.raises(SourceMissing):
        convert(plan_for(file, "in/gone.csv.jsonl"), S3Store(s3), SMALL_PARTS)
    assert output_keys(s3) == []


def test_overwritten_source_is_stale(s3: Any) -> None:
    # GIVEN a plan for one version, and the key since overwritten with other content
    file = upload(s3, "in/changed.csv", b"a\n1\n")
    s3.put_object(Bucket=STAGING, Key="in/changed.csv", Body=b"a\n2\n")
    # WHEN converted THEN SourceChanged (eTag precondition), and nothing is written
    with pytest.raises(SourceChanged):
        convert(plan_for(file, "in/changed.csv.jsonl"), S3Store(s3), SMALL_PARTS)
    assert output_keys(s3) == []


class DroppingStore(S3Store):
    """Real S3 for writes; the source body times out after its first megabytes."""

    def open_stream(self, ref: ObjectRef) -> BinaryIO:
        data = super().open_stream(ref).read()

        class Body(io.RawIOBase):
            def __init__(self) -> None:
                self._data = io.BytesIO(data[: len(data) // 2])

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                chunk = self._data.read(len(buffer))
                if not chunk:
                    raise ReadTimeoutError(endpoint_url=f"https://{ref.bucket}.s3.amazonaws.com")
                buffer[: len(chunk)] = chunk
                return len(chunk)

        return cast(BinaryIO, Body())


def test_read_timeout_mid_stream_is_transient_and_aborts_the_upload(s3: Any) -> None:
    # GIVEN a large source whose connection times out halfway through
    file = upload(s3, "in/slow.csv", big_csv(75_000))
    # WHEN converted
    with pytest.raises(StorageUnavailable, match="ReadTimeoutError") as err:
        convert(plan_for(file, "in/slow.csv.jsonl"), DroppingStore(s3), SMALL_PARTS)
    # THEN it is a TransientError (retried, never quarantined) chained to the cause
    assert isinstance(err.value.__cause__, ReadTimeoutError)
    assert pending_uploads(s3) == []
    assert output_keys(s3) == []


# --- handler --------------------------------------------------------------------------------


def test_handler_converts_and_returns_output_dict(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the function's settings in the environment and a convert event from the workflow
    monkeypatch.setenv(names.ENV_PART_SIZE_BYTES, str(MIN_PART_SIZE_BYTES))
    file = upload(s3, "in/h.csv", b"x,y\n1,2\n")
    event = {"plan": plan_for(file, "in/h.csv.jsonl").to_dict(), "execution": "exec-123"}
    # WHEN the handler runs (the plan travels as JSON, like Step Functions state data)
    result = handler_module.handler(json.loads(json.dumps(event)), None)
    # THEN it returns the Output dict and wrote the target
    assert result == {
        "bucket": OUTPUT,
        "key": "in/h.csv.jsonl",
        "format": "jsonl",
        "rows": 1,
        "bytes": len(b'{"x":"1","y":"2"}\n'),
    }
    assert read_output(s3, "in/h.csv.jsonl") == b'{"x":"1","y":"2"}\n'
    assert handler_module.settings() == ConvertSettings(part_size_bytes=MIN_PART_SIZE_BYTES)


def test_handler_builds_settings_and_store_once(s3: Any) -> None:
    file = upload(s3, "in/twice.csv", b"a\n1\n")
    event = {"plan": plan_for(file, "in/twice.csv.jsonl").to_dict(), "execution": "e"}
    handler_module.handler(event, None)
    handler_module.handler(event, None)
    assert handler_module.settings.cache_info().misses == 1
    assert handler_module.store.cache_info().misses == 1


def test_handler_propagates_permanent_errors_by_class_name(s3: Any) -> None:
    # GIVEN a ragged file
    file = upload(s3, "in/bad.csv", b"a,b\n1\n")
    event = {"plan": plan_for(file, "in/bad.csv.jsonl").to_dict(), "execution": "e"}
    # THEN the exception's class name (Lambda's errorType) is what the workflow matches
    with pytest.raises(MalformedContent) as err:
        handler_module.handler(event, None)
    assert type(err.value).__name__ == "MalformedContent"


def test_handler_rejects_malformed_event(s3: Any) -> None:
    with pytest.raises(ModelError):
        handler_module.handler({"plan": {"file": {"bucket": STAGING}}, "execution": "e"}, None)


def test_import_does_not_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a setting that is invalid
    monkeypatch.setenv(names.ENV_PART_SIZE_BYTES, "not-a-number")
    # WHEN the handler module is (re)imported THEN nothing fails: settings are read lazily
    module = importlib.reload(handler_module)
    # AND the invalid setting is reported on first use
    with pytest.raises(SettingsError, match=names.ENV_PART_SIZE_BYTES):
        module.settings()
