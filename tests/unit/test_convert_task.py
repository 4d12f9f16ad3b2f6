"""The convert step on moto S3: domain.convert (streaming, one multipart upload per output
format, rejected rows beside them) and the Lambda handler."""

from __future__ import annotations

import dataclasses
import gzip
import importlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import zstandard
from botocore.exceptions import ReadTimeoutError

from tasks import names
from tasks.adapters.s3 import S3Store
from tasks.convert import domain, engine
from tasks.convert import handler as handler_module
from tasks.convert.domain import convert
from tasks.data_contracts.config import parse_contracts
from tasks.data_contracts.model import ContractSet
from tasks.errors import (
    ContractViolation,
    MalformedContent,
    SourceChanged,
    SourceMissing,
    StorageUnavailable,
)
from tasks.models import (
    Compression,
    FileSpec,
    ModelError,
    ObjectRef,
    OutputFormat,
    Plan,
    Target,
)
from tasks.settings import MIN_PART_SIZE_BYTES, ConvertSettings, SettingsError
from tests.support.unit import OUTPUT, STAGING, fresh

SMALL_PARTS = ConvertSettings(part_size_bytes=MIN_PART_SIZE_BYTES)  # 5 MiB, S3's minimum
TINY_PARTS = ConvertSettings(part_size_bytes=64 * 1024)
"""Below S3's minimum: only for uploads that must be aborted (moto checks sizes on completion)."""
BOTH: tuple[OutputFormat, ...] = ("jsonl", "parquet")

CONTRACTS = """
[settings]
unmatched = "text"

[contracts.orders]
match = { prefixes = ["in/"] }
outputs = ["jsonl", "parquet"]
on_error = { policy = "drop_rows", max_rejected_rows = 10 }

[[contracts.orders.columns]]
name = "id"
type = "int"
nullable = false

[[contracts.orders.columns]]
name = "amount"
type = "float"
"""


@pytest.fixture(autouse=True)
def fresh_handler_caches() -> Iterator[None]:
    with fresh():
        yield


def upload(
    client: Any,
    key: str,
    body: bytes,
    compression: Compression = "none",
    delimiter: str | None = None,
) -> FileSpec:
    client.put_object(Bucket=STAGING, Key=key, Body=body)
    head = client.head_object(Bucket=STAGING, Key=key)
    ref = ObjectRef(
        bucket=STAGING, key=key, size=head["ContentLength"], etag=head["ETag"].strip('"')
    )
    return FileSpec(ref=ref, compression=compression, delimiter=delimiter)


def plan_for(
    file: FileSpec,
    target_key: str,
    formats: tuple[OutputFormat, ...] = ("jsonl",),
    contract: str | None = None,
) -> Plan:
    target = Target(bucket=OUTPUT, key=target_key, formats=formats, contract=contract)
    return Plan(file=file, target=target)


def read_output(client: Any, key: str) -> bytes:
    body: bytes = client.get_object(Bucket=OUTPUT, Key=key)["Body"].read()
    return body


def read_parquet(client: Any, key: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(io.BytesIO(read_output(client, key))).to_pylist()
    return rows


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


def random_csv(rows: int) -> bytes:
    """Rows of random hex: compresses badly, so Parquet output is large too."""
    noise = os.urandom(rows * 40).hex()
    lines = [f"{i},{noise[i * 80 : (i + 1) * 80]}\n" for i in range(rows)]
    return ("id,noise\n" + "".join(lines)).encode()


def count_calls(client: Any, operation: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    client.meta.events.register(
        f"before-parameter-build.s3.{operation}", lambda params, **_: calls.append(dict(params))
    )
    return calls


def contracts() -> ContractSet:
    return parse_contracts(CONTRACTS)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine cuts the input into 64 KiB chunks and Parquet row groups at 1,000 rows, so
    that output streams out (row groups, parts) long before the end of a test-sized file."""
    real = domain.engine_options

    def options(plan: Plan, contract_set: ContractSet | None, limits: Any = None) -> Any:
        plain = real(plan, contract_set, limits)
        return dataclasses.replace(plain, chunk_bytes=64 * 1024, row_group_rows=1000)

    monkeypatch.setattr(domain, "engine_options", options)


# --- domain ---------------------------------------------------------------------------------


def test_small_file_is_converted_to_the_target(s3: Any) -> None:
    # GIVEN a small CSV in staging
    file = upload(s3, "in/orders.csv", b'id,item\n1,"pen, blue"\n2,\n')
    # WHEN converted to JSON Lines
    output = convert(plan_for(file, "in/orders.csv"), S3Store(s3), SMALL_PARTS)
    # THEN <key>.jsonl holds exact JSON Lines and Output describes it
    expected = b'{"id":"1","item":"pen, blue"}\n{"id":"2","item":""}\n'
    assert read_output(s3, "in/orders.csv.jsonl") == expected
    assert output.to_dict() == {
        "bucket": OUTPUT,
        "keys": {"jsonl": "in/orders.csv.jsonl"},
        "rows": 2,
        "rejectedRows": 0,
        "bytes": {"jsonl": len(expected)},
        "rejectedKey": None,
        "replaced": [],
        "schema": None,
        "widened": [],
    }
    head = s3.head_object(Bucket=OUTPUT, Key="in/orders.csv.jsonl")
    assert head["ContentType"] == "application/x-ndjson"
    assert output_keys(s3) == ["in/orders.csv.jsonl"]


def test_both_formats_are_written_beside_each_other(s3: Any) -> None:
    # GIVEN a CSV with quoting, an empty field and non-ASCII text
    body = 'id,item,city\n1,"pen, ""blue""",Zürich\n2,,\n'.encode()
    file = upload(s3, "in/orders.csv", body)
    # WHEN converted to JSON Lines and Parquet
    output = convert(plan_for(file, "in/orders.csv", BOTH), S3Store(s3), SMALL_PARTS)
    # THEN both objects exist at <key>.<format>, with their content types
    assert output_keys(s3) == ["in/orders.csv.jsonl", "in/orders.csv.parquet"]
    assert output.keys == {"jsonl": "in/orders.csv.jsonl", "parquet": "in/orders.csv.parquet"}
    for fmt, content_type in domain.CONTENT_TYPES.items():
        head = s3.head_object(Bucket=OUTPUT, Key=f"in/orders.csv.{fmt}")
        assert head["ContentType"] == content_type
        # AND Output.bytes is each object's size
        assert output.bytes is not None
        assert output.bytes[fmt] == head["ContentLength"]
    # AND the Parquet rows are the JSON Lines rows (text mode: strings, "" kept)
    jsonl = [json.loads(line) for line in read_output(s3, "in/orders.csv.jsonl").splitlines()]
    assert jsonl == [
        {"id": "1", "item": 'pen, "blue"', "city": "Zürich"},
        {"id": "2", "item": "", "city": ""},
    ]
    assert read_parquet(s3, "in/orders.csv.parquet") == jsonl
    assert (output.rows, output.rejected_rows, output.rejected_key) == (2, 0, None)


def test_large_output_is_written_in_several_multipart_parts(s3: Any) -> None:
    # GIVEN a CSV whose JSON Lines output exceeds two 5 MiB parts
    rows = 75_000
    file = upload(s3, "in/big.csv", big_csv(rows))
    parts = count_calls(s3, "UploadPart")
    # WHEN converted with the minimum part size
    output = convert(plan_for(file, "in/big.csv"), S3Store(s3), SMALL_PARTS)
    # THEN it went up as 3 parts and the object is exactly the expected output
    expected = big_jsonl(rows)
    assert len(expected) > 2 * MIN_PART_SIZE_BYTES
    assert len(parts) == 3
    assert read_output(s3, "in/big.csv.jsonl") == expected
    assert (output.rows, output.bytes) == (rows, {"jsonl": len(expected)})
    assert pending_uploads(s3) == []


@pytest.mark.parametrize(
    "formats", [("jsonl",), ("parquet",), BOTH], ids=["jsonl", "parquet", "both"]
)
def test_failure_midway_leaves_no_object_and_no_pending_upload(
    s3: Any, small_chunks: None, formats: tuple[OutputFormat, ...]
) -> None:
    # GIVEN a file whose last row is ragged, after many chunks of good output
    body = random_csv(12_000) + b"12000,too,many\n"
    file = upload(s3, "in/broken.csv", body)
    parts = count_calls(s3, "UploadPart")
    # WHEN converted (parts small enough that several go up before the bad row is reached)
    with pytest.raises(MalformedContent, match=r"row 12002: expected 2 fields .* found 3"):
        convert(plan_for(file, "in/broken.csv", formats), S3Store(s3), TINY_PARTS)
    # THEN every format had uploaded parts, yet every upload was aborted: nothing is visible
    # or pending
    for fmt in formats:
        assert sum(1 for p in parts if p["Key"] == f"in/broken.csv.{fmt}") >= 2, fmt
    assert pending_uploads(s3) == []
    assert output_keys(s3) == []


def test_rejected_rows_go_to_their_own_object(s3: Any) -> None:
    # GIVEN a contract that drops bad rows, and a file with one
    file = upload(s3, "in/orders.csv", b"id,amount\n1,1.5\nx,2\n3,\n")
    plan = plan_for(file, "in/orders.csv", BOTH, contract="orders")
    # WHEN converted
    output = convert(plan, S3Store(s3), SMALL_PARTS, contracts())
    # THEN the good rows are typed in both formats, the bad one is in <key>.rejected.jsonl
    assert output_keys(s3) == [
        "in/orders.csv.jsonl",
        "in/orders.csv.parquet",
        "in/orders.csv.rejected.jsonl",
    ]
    assert read_parquet(s3, "in/orders.csv.parquet") == [
        {"id": 1, "amount": 1.5},
        {"id": 3, "amount": None},
    ]
    assert read_output(s3, "in/orders.csv.jsonl") == (
        b'{"id":1,"amount":1.5}\n{"id":3,"amount":null}\n'
    )
    rejected = [json.loads(r) for r in read_output(s3, "in/orders.csv.rejected.jsonl").splitlines()]
    assert rejected == [{"id": "x", "amount": "2", "_row": 3, "_errors": "id: not a valid int"}]
    assert output.to_dict()["rejectedRows"] == 1
    assert output.rejected_key == "in/orders.csv.rejected.jsonl"
    head = s3.head_object(Bucket=OUTPUT, Key="in/orders.csv.rejected.jsonl")
    assert head["ContentType"] == "application/x-ndjson"


def test_no_rejected_object_when_no_row_is_rejected(s3: Any) -> None:
    file = upload(s3, "in/orders.csv", b"id,amount\n1,1.5\n2,2\n")
    plan = plan_for(file, "in/orders.csv", BOTH, contract="orders")
    output = convert(plan, S3Store(s3), SMALL_PARTS, contracts())
    assert output_keys(s3) == ["in/orders.csv.jsonl", "in/orders.csv.parquet"]
    assert (output.rows, output.rejected_rows, output.rejected_key) == (2, 0, None)


def test_contract_violation_leaves_nothing_behind(s3: Any, small_chunks: None) -> None:
    # GIVEN more bad rows than the contract allows, some rejected rows already written
    rows = [f"{i},{i}.5\n" for i in range(20_000)]
    for i in range(100, 20_000, 1_000):
        rows[i] = f"bad{i},1\n"
    file = upload(s3, "in/orders.csv", ("id,amount\n" + "".join(rows)).encode())
    plan = plan_for(file, "in/orders.csv", BOTH, contract="orders")
    # WHEN converted THEN ContractViolation, and no output, rejected-rows object or upload left
    with pytest.raises(ContractViolation, match="max_rejected_rows=10"):
        convert(plan, S3Store(s3), TINY_PARTS, contracts())
    assert output_keys(s3) == []
    assert pending_uploads(s3) == []


def test_plan_naming_a_contract_needs_the_contracts(s3: Any) -> None:
    file = upload(s3, "in/orders.csv", b"id,amount\n1,2\n")
    with pytest.raises(ValueError, match="none are loaded"):
        convert(plan_for(file, "in/orders.csv", contract="orders"), S3Store(s3), SMALL_PARTS)
    assert output_keys(s3) == []


@pytest.mark.parametrize(
    ("key", "body", "compression"),
    [
        ("in/g.tsv.gz", gzip.compress(b"a\tb\n1\t2\n"), "gzip"),
        ("in/z.tsv.zst", zstandard.ZstdCompressor().compress(b"a\tb\n1\t2\n"), "zstd"),
    ],
)
def test_compressed_source(s3: Any, key: str, body: bytes, compression: Compression) -> None:
    # GIVEN a compressed TSV; the target key is the source key without the compression
    file = upload(s3, key, body, compression, delimiter="\t")
    base = key.rsplit(".", 1)[0]
    output = convert(plan_for(file, base), S3Store(s3), SMALL_PARTS)
    assert read_output(s3, f"{base}.jsonl") == b'{"a":"1","b":"2"}\n'
    assert output.rows == 1


def test_declared_delimiter_is_used(s3: Any) -> None:
    # GIVEN a semicolon file whose header has more commas than semicolons
    file = upload(s3, "in/x.csv", b"a,b;c\n1,2;3\n", delimiter=";")
    convert(plan_for(file, "in/x.csv"), S3Store(s3), SMALL_PARTS)
    assert read_output(s3, "in/x.csv.jsonl") == b'{"a,b":"1,2","c":"3"}\n'


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
    # WHEN converted to both formats
    convert(plan_for(file, key, BOTH), S3Store(s3), SMALL_PARTS)
    # THEN the targets exist under exactly those keys
    assert sorted(output_keys(s3)) == [f"{key}.jsonl", f"{key}.parquet"]
    assert read_output(s3, f"{key}.jsonl") == b'{"k":"v"}\n'


def test_header_only_file_writes_an_empty_json_lines_object_and_an_empty_table(s3: Any) -> None:
    file = upload(s3, "in/empty.csv", b"a,b\n")
    output = convert(plan_for(file, "in/empty.csv", BOTH), S3Store(s3), SMALL_PARTS)
    assert output.rows == 0
    assert output.bytes is not None
    assert output.bytes["jsonl"] == 0
    assert read_output(s3, "in/empty.csv.jsonl") == b""
    table = pq.read_table(io.BytesIO(read_output(s3, "in/empty.csv.parquet")))
    assert (table.num_rows, table.column_names) == (0, ["a", "b"])


def test_missing_source_is_stale(s3: Any) -> None:
    # GIVEN a plan for an object that was deleted since validation
    file = upload(s3, "in/gone.csv", b"a\n1\n")
    s3.delete_object(Bucket=STAGING, Key="in/gone.csv")
    # WHEN converted THEN SourceMissing, and nothing is written
    with pytest.raises(SourceMissing):
        convert(plan_for(file, "in/gone.csv", BOTH), S3Store(s3), SMALL_PARTS)
    assert output_keys(s3) == []


def test_overwritten_source_is_stale(s3: Any) -> None:
    # GIVEN a plan for one version, and the key since overwritten with other content
    file = upload(s3, "in/changed.csv", b"a\n1\n")
    s3.put_object(Bucket=STAGING, Key="in/changed.csv", Body=b"a\n2\n")
    # WHEN converted THEN SourceChanged (eTag precondition), and nothing is written
    with pytest.raises(SourceChanged):
        convert(plan_for(file, "in/changed.csv", BOTH), S3Store(s3), SMALL_PARTS)
    assert output_keys(s3) == []


class DroppingClient:
    """The real (moto) client, except that a GetObject body times out halfway through."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **kwargs: Any) -> Any:
        resp = self._client.get_object(**kwargs)
        data = resp["Body"].read()
        endpoint = f"https://{kwargs['Bucket']}.s3.amazonaws.com"

        class Body(io.RawIOBase):
            def __init__(self) -> None:
                self._data = io.BytesIO(data[: len(data) // 2])

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                chunk = self._data.read(len(buffer))
                if not chunk:
                    raise ReadTimeoutError(endpoint_url=endpoint)
                buffer[: len(chunk)] = chunk
                return len(chunk)

        return {**resp, "Body": Body()}


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_read_timeout_mid_stream_is_transient_and_aborts_the_uploads(
    s3: Any, small_chunks: None, compression: Compression
) -> None:
    # GIVEN a large source whose connection times out halfway through
    body = random_csv(12_000)
    file = upload(s3, "in/slow.csv", gzip.compress(body) if compression == "gzip" else body)
    file = dataclasses.replace(file, compression=compression)
    parts = count_calls(s3, "UploadPart")
    # WHEN converted to both formats
    with pytest.raises(StorageUnavailable, match="ReadTimeoutError") as err:
        convert(plan_for(file, "in/slow.csv", BOTH), S3Store(DroppingClient(s3)), TINY_PARTS)
    # THEN it is a TransientError (retried, never quarantined) chained to the cause, and
    # the uploads begun are aborted
    assert isinstance(err.value.__cause__, ReadTimeoutError)
    if compression == "none":  # (gzip's read buffer meets the timeout before any output)
        assert parts
    assert pending_uploads(s3) == []
    assert output_keys(s3) == []


# --- handler --------------------------------------------------------------------------------


def test_handler_converts_and_returns_output_dict(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the function's settings in the environment and a convert event from the workflow
    monkeypatch.setenv(names.ENV_PART_SIZE_BYTES, str(MIN_PART_SIZE_BYTES))
    file = upload(s3, "in/h.csv", b"x,y\n1,2\n")
    event = {"plan": plan_for(file, "in/h.csv", BOTH).to_dict(), "execution": "exec-123"}
    # WHEN the handler runs (the plan travels as JSON, like Step Functions state data)
    result = handler_module.handler(json.loads(json.dumps(event)), None)
    # THEN it returns the Output dict and wrote both targets
    parquet_size = s3.head_object(Bucket=OUTPUT, Key="in/h.csv.parquet")["ContentLength"]
    assert result == {
        "bucket": OUTPUT,
        "keys": {"jsonl": "in/h.csv.jsonl", "parquet": "in/h.csv.parquet"},
        "rows": 1,
        "rejectedRows": 0,
        "bytes": {"jsonl": len(b'{"x":"1","y":"2"}\n'), "parquet": parquet_size},
        "rejectedKey": None,
        "replaced": [],
        "schema": None,
        "widened": [],
    }
    assert read_output(s3, "in/h.csv.jsonl") == b'{"x":"1","y":"2"}\n'
    assert handler_module.settings() == ConvertSettings(part_size_bytes=MIN_PART_SIZE_BYTES)


def test_handler_types_rows_with_the_contracts_file(
    s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN the contracts file named in the environment, and a plan naming a contract
    path = tmp_path / "contracts.toml"
    path.write_text(CONTRACTS)
    monkeypatch.setenv(names.ENV_CONTRACTS_FILE, str(path))
    file = upload(s3, "in/orders.csv", b"id,amount\n1,2.5\nbad,1\n")
    plan = plan_for(file, "in/orders.csv", BOTH, contract="orders")
    # WHEN the handler runs
    result = handler_module.handler({"plan": plan.to_dict(), "execution": "e"}, None)
    # THEN the rows are typed and the bad one is set aside
    assert (result["rows"], result["rejectedRows"]) == (1, 1)
    assert result["rejectedKey"] == "in/orders.csv.rejected.jsonl"
    assert read_output(s3, "in/orders.csv.jsonl") == b'{"id":1,"amount":2.5}\n'


def test_handler_builds_settings_store_and_contracts_once(s3: Any) -> None:
    file = upload(s3, "in/twice.csv", b"a\n1\n")
    event = {"plan": plan_for(file, "in/twice.csv").to_dict(), "execution": "e"}
    handler_module.handler(event, None)
    handler_module.handler(event, None)
    assert handler_module.settings.cache_info().misses == 1
    assert handler_module.store.cache_info().misses == 1
    assert handler_module.contracts.cache_info().misses == 1


def test_handler_propagates_permanent_errors_by_class_name(s3: Any) -> None:
    # GIVEN a ragged file
    file = upload(s3, "in/bad.csv", b"a,b\n1\n")
    event = {"plan": plan_for(file, "in/bad.csv").to_dict(), "execution": "e"}
    # THEN the exception's class name (Lambda's errorType) is what the workflow matches
    with pytest.raises(MalformedContent) as err:
        handler_module.handler(event, None)
    assert type(err.value).__name__ == "MalformedContent"
    assert str(err.value) == "row 2: expected 2 fields as in the header, found 1"


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


# --- decompression limits and bad headers (the Lambda route) -------------------------------------
def test_a_decompression_bomb_is_rejected_by_the_settings_limits_and_leaves_nothing(
    s3: Any,
) -> None:
    from tasks.errors import DecompressionLimitExceeded
    from tasks.settings import DecompressionLimits

    # GIVEN a gzip file holding 24 MiB of rows in ~25 KB (~1000:1)
    body = gzip.compress(b"a,b\n" + b"0,0\n" * (6 * 1024 * 1024), 9)
    file = upload(s3, "in/bomb.csv.gz", body, compression="gzip")
    limits = DecompressionLimits(max_ratio=100, grace_bytes=4 * 1024 * 1024)
    settings = ConvertSettings(decompression=limits)
    # WHEN converted with a 100:1 limit past 4 MiB
    with pytest.raises(DecompressionLimitExceeded, match="expands more than 100 times"):
        convert(plan_for(file, "in/bomb.csv.gz", ("jsonl", "parquet")), S3Store(s3), settings)
    # THEN no output and no upload is left behind
    assert output_keys(s3) == []
    assert pending_uploads(s3) == []


def test_a_header_with_nul_bytes_is_malformed_content_for_parquet(s3: Any) -> None:
    file = upload(s3, "in/nul.csv", "id,name\n1,2\n".encode("utf-16-le"))
    with pytest.raises(MalformedContent, match="NUL byte"):
        convert(plan_for(file, "in/nul.csv", ("parquet",)), S3Store(s3), ConvertSettings())
    assert output_keys(s3) == []


# --- inferred types (Target.infer): the one restart reads the source again ----------------------
def kib_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 1 KiB, so that a value a few KiB into a file comes after the first chunk."""
    plain = domain.engine_options

    def options(*args: Any, **kwargs: Any) -> engine.EngineOptions:
        return dataclasses.replace(plain(*args, **kwargs), chunk_bytes=1024)

    monkeypatch.setattr(domain, "engine_options", options)


LATE = b"id,amount,zip\n" + b"1,7,00501\n" * 2000 + b"2,1.5,NA\n"


def test_inferred_types_widen_and_the_source_is_read_again(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a file whose amount column meets 1.5 after 2,000 ints, and a plan that infers types
    kib_chunks(monkeypatch)
    file = upload(s3, "in/late.csv", LATE)
    target = Target(bucket=OUTPUT, key="in/late.csv", formats=BOTH, infer=True)
    store = S3Store(s3)
    opened: list[ObjectRef] = []
    open_stream = store.open_stream

    def counted(ref: ObjectRef) -> Any:
        opened.append(ref)
        return open_stream(ref)

    monkeypatch.setattr(store, "open_stream", counted)
    # WHEN converted (the Lambda's and the Batch job's domain.convert)
    output = convert(Plan(file=file, target=target), store, SMALL_PARTS)
    # THEN the source was read twice, the outputs have the wider type and every row
    assert len(opened) == 2
    assert output.schema == {"id": "int", "amount": "float", "zip": "string"}
    assert output.widened == (
        {"column": "amount", "from": "int", "to": "float", "row": 2002, "value": "1.5"},
    )
    assert output.to_dict()["widened"] == list(output.widened)
    rows = read_parquet(s3, "in/late.csv.parquet")
    assert len(rows) == output.rows == 2001
    assert rows[-1] == {"id": 2, "amount": 1.5, "zip": "NA"} and rows[0]["zip"] == "00501"
    last = read_output(s3, "in/late.csv.jsonl").splitlines()[-1]
    assert json.loads(last) == {"id": 2, "amount": 1.5, "zip": "NA"}
    # AND the first run's uploads were aborted, not left behind
    assert s3.list_multipart_uploads(Bucket=OUTPUT).get("Uploads", []) == []
    assert output_keys(s3) == ["in/late.csv.jsonl", "in/late.csv.parquet"]


def test_unmatched_infer_types_the_pipeline_output_and_text_keeps_strings(s3: Any) -> None:
    file = upload(s3, "in/t.csv", b"n,flag\n1,true\nNA,false\n")
    typed = convert(
        Plan(file=file, target=Target(bucket=OUTPUT, key="in/t.csv", infer=True)),
        S3Store(s3),
        SMALL_PARTS,
    )
    assert read_output(s3, "in/t.csv.jsonl") == b'{"n":1,"flag":true}\n{"n":null,"flag":false}\n'
    assert typed.schema == {"n": "int", "flag": "bool"} and typed.widened == ()
    text = convert(
        Plan(file=file, target=Target(bucket=OUTPUT, key="in/t.csv")), S3Store(s3), SMALL_PARTS
    )
    assert text.schema is None
    assert read_output(s3, "in/t.csv.jsonl").splitlines()[1] == b'{"n":"NA","flag":"false"}'
