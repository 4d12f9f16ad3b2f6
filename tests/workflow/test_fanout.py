"""One file across many workers on the embedded engine: the same workflow as on AWS plans the
parts, converts them in a Distributed Map on the local Lambda workers, commits and archives —
and the outputs equal a single-worker conversion of the same file exactly."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from chute.local.embedded import EmbeddedAws
from chute.local.local_stack import CONTRACTS_FILE
from tasks.formats import keys
from tests.support import zstd_layouts
from tests.support.accounting import assert_accounted
from tests.support.pipeline import FANOUT_PART_BYTES, FANOUT_THRESHOLD, Pipeline


def _body(seed: int) -> bytes:
    """Just above the fan-out threshold: quoted newlines and delimiters (some straddle cuts), a
    late float in an int column (the parts' types differ: one more round)."""
    rng = random.Random(seed)
    notes = ['"two\nlines"', '"a, b"', "plain", '"say ""hi"""', "", "NA"]
    lines = ["id,amount,note,day"]
    size, i = 0, 0
    while size < FANOUT_THRESHOLD + (1 << 20):
        line = f"{i},{rng.randint(-9, 9)},{rng.choice(notes)},2024-01-{1 + i % 28:02d}"
        lines.append(line)
        size += len(line) + 1
        i += 1
    lines.append(f"{i},2.5,late,2024-02-01")
    return ("\n".join(lines) + "\n").encode()


def _single(
    tmp_path: Path, body: bytes, fmt: str, name: str = "data.csv", *, contract: str | None = None
) -> bytes:
    src, dst = tmp_path / name, tmp_path / f"data.{fmt}"
    src.write_bytes(body)
    chute = Path(sys.executable).parent / "chute"
    command = [str(chute), "convert", str(src), str(dst), "--to", fmt]
    if contract is not None:
        command += ["--contract", contract, "--contracts", str(CONTRACTS_FILE)]
    subprocess.run(command, check=True)
    return dst.read_bytes()


def _fanout_objects(pipeline: Pipeline, execution: str) -> list[str]:
    """What the execution's fan-out left in the output bucket."""
    prefix = keys.fanout_key(execution, "")
    return [k for k in pipeline.keys(pipeline.r.output_bucket) if k.startswith(prefix)]


def test_a_huge_file_fans_out_and_equals_the_single_worker_conversion(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    body = _body(1)
    key = "huge/readings.csv"
    pipeline.put(key, body)
    ex = pipeline.wait_for(key, timeout=300)
    assert ex.status == "SUCCEEDED", ex.cause
    assert ex.route == "fanout"
    assert ex.output is not None
    assert ex.output["convert"]["parts"] == pytest.approx(len(body) / FANOUT_PART_BYTES, abs=1)
    assert ex.output["convert"]["schema"]["amount"] == "float"  # decided for the whole file
    jsonl = pipeline.read(pipeline.r.output_bucket, keys.output_key(key, "jsonl"))
    assert jsonl == _single(tmp_path, body, "jsonl")
    parquet = pipeline.read(pipeline.r.output_bucket, keys.output_key(key, "parquet"))
    expected = pq.read_table(io.BytesIO(_single(tmp_path, body, "parquet")))
    table = pq.read_table(io.BytesIO(parquet))
    assert table.schema == expected.schema and table.equals(expected)
    # nothing of the fan-out is left but its verdict: no part objects, no unfinished upload
    assert _fanout_objects(pipeline, ex.name) == [keys.fanout_key(ex.name, keys.FANOUT_OUTCOME)]
    assert (
        pipeline.s3.list_multipart_uploads(Bucket=pipeline.r.output_bucket).get("Uploads", []) == []
    )
    assert assert_accounted(pipeline, [key]) == {key: "archived"}


@pytest.mark.parametrize("operation", ["PutObject"])
def test_a_part_whose_worker_is_killed_is_retried_alone(
    pipeline: Pipeline, embedded: EmbeddedAws, operation: str
) -> None:
    body = _body(2)
    key = "huge/killed.csv"
    embedded.faults.add(f"lambda:convert:kill:1:{operation}")
    pipeline.put(key, body)
    ex = pipeline.wait_for(key, timeout=300)
    assert len(embedded.faults.fired(f"lambda:convert:kill:1:{operation}: ")) == 1
    assert ex.status == "SUCCEEDED", ex.cause
    assert ex.route == "fanout"
    assert _fanout_objects(pipeline, ex.name) == [keys.fanout_key(ex.name, keys.FANOUT_OUTCOME)]
    assert assert_accounted(pipeline, [key]) == {key: "archived"}


def _zstd_content(seed: int) -> bytes:
    """40 MiB that compress to a little more than the fan-out threshold (random tokens), with
    quoted newlines and delimiters."""
    rng = random.Random(seed)
    notes = ['"two\nlines"', '"a, b"', "plain", '"say ""hi"""', "", "NA"]
    lines = ["id,token,note,code"]
    size, i = 0, 0
    while size < 40 << 20:
        line = f"{i},{rng.getrandbits(64):016x},{rng.choice(notes)},{rng.getrandbits(32):08x}"
        lines.append(line)
        size += len(line) + 1
        i += 1
    return ("\n".join(lines) + "\n").encode()


def test_a_huge_multi_frame_zstd_file_fans_out_and_equals_the_single_worker(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    # GIVEN a zstd file written as pzstd writes them: frames of ~1 MiB, records straddling them
    content = _zstd_content(3)
    body = zstd_layouts.multi_frame(content, "pzstd", random.Random(3), 700_000, 1_400_000)
    assert len(body) >= FANOUT_THRESHOLD
    key = "huge/frames.csv.zst"
    pipeline.put(key, body)
    ex = pipeline.wait_for(key, timeout=300)
    # THEN it fans out, and its outputs are the single worker's
    assert ex.status == "SUCCEEDED", ex.cause
    assert ex.route == "fanout"
    assert ex.output is not None and ex.output["convert"]["parts"] > 3
    base = keys.output_base(key)
    jsonl = pipeline.read(pipeline.r.output_bucket, keys.output_key(base, "jsonl"))
    assert jsonl == _single(tmp_path, body, "jsonl", name="data.csv.zst")
    parquet = pipeline.read(pipeline.r.output_bucket, keys.output_key(base, "parquet"))
    expected = pq.read_table(io.BytesIO(_single(tmp_path, body, "parquet", name="data.csv.zst")))
    table = pq.read_table(io.BytesIO(parquet))
    assert table.schema == expected.schema and table.equals(expected)
    assert _fanout_objects(pipeline, ex.name) == [keys.fanout_key(ex.name, keys.FANOUT_OUTCOME)]
    assert assert_accounted(pipeline, [key]) == {key: "archived"}


def test_a_huge_single_frame_zstd_file_takes_the_batch_job(pipeline: Pipeline) -> None:
    content = _zstd_content(4)
    body = zstd_layouts.single_frame(content)
    assert len(body) >= FANOUT_THRESHOLD
    key = "huge/one-frame.csv.zst"
    pipeline.put(key, body)
    ex = pipeline.wait_for(key, timeout=300)
    assert ex.status == "SUCCEEDED", ex.cause
    assert ex.route == "batch"  # planned, found one frame: no parts, one sized Batch job
    jsonl = pipeline.read(pipeline.r.output_bucket, keys.output_key(keys.output_base(key), "jsonl"))
    last_id = int(content.rsplit(b"\n", 2)[-2].split(b",")[0])
    assert jsonl.count(b"\n") == last_id + 1  # every row
    assert _fanout_objects(pipeline, ex.name) == []
    assert assert_accounted(pipeline, [key]) == {key: "archived"}


def _orders(seed: int, bad: int) -> bytes:
    """Orders for contracts.toml's acme-orders (drop_rows, at most 100 rejected), just above the
    fan-out threshold, ``bad`` of them breaking it (spread over the file), quoted newlines."""
    rng = random.Random(seed)
    header = "order_id,customer_email,order_date,placed_at,quantity,unit_price,currency,coupon_code"
    rows = []
    size, i = 0, 0
    while size < FANOUT_THRESHOLD + (1 << 20):
        coupon = rng.choice(["", "SAVE10", '"two\nlines"', '"a, b"'])
        row = (
            f"ORD-{i:08d},c{i}@example.com,2024-03-{1 + i % 28:02d},"
            f"2024-03-01T10:{i % 60:02d}:00Z,{1 + i % 9},{rng.randint(1, 9999) / 100},"
            f"{rng.choice(['EUR', 'USD', 'GBP'])},{coupon}"
        )
        rows.append(row)
        size += len(row) + 1
        i += 1
    for n in rng.sample(range(len(rows)), bad):
        rows[n] = (
            rows[n].replace(",EUR,", ",JPY,").replace(",USD,", ",JPY,").replace(",GBP,", ",JPY,")
        )
    return ("\n".join([header, *rows]) + "\n").encode()


def test_a_huge_file_with_a_contract_fans_out_with_its_rejected_rows(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    # GIVEN a huge file under a contract that drops bad rows (60 of at most 100)
    body = _orders(5, 60)
    key = "partners/acme/orders/huge.csv"
    pipeline.put(key, body)
    ex = pipeline.wait_for(key, timeout=300)
    # THEN it fans out, the budget decided for the whole file, and equals a single worker's
    assert ex.status == "SUCCEEDED", ex.cause
    assert ex.route == "fanout"
    out = pipeline.r.output_bucket
    jsonl = pipeline.read(out, keys.output_key(key, "jsonl"))
    assert jsonl == _single(tmp_path, body, "jsonl", contract="acme-orders")
    rejected = pipeline.read(out, keys.rejected_key(key))
    assert rejected == (tmp_path / "data.jsonl.rejected.jsonl").read_bytes()
    assert rejected.count(b"\n") == 60
    parquet = pq.read_table(io.BytesIO(pipeline.read(out, keys.output_key(key, "parquet"))))
    single = _single(tmp_path, body, "parquet", contract="acme-orders")
    assert parquet.equals(pq.read_table(io.BytesIO(single)))
    assert assert_accounted(pipeline, [key]) == {key: "archived"}


def test_a_huge_file_over_its_contracts_budget_is_quarantined(pipeline: Pipeline) -> None:
    body = _orders(6, 150)
    key = "partners/acme/orders/too-many.csv"
    pipeline.put(key, body)
    ex = pipeline.wait_for(key, timeout=300)
    assert ex.status == "FAILED" and ex.route == "fanout"
    assert ex.error == "ContractViolation"
    report = json.loads(pipeline.read(pipeline.r.quarantine_bucket, key + ".error.json"))
    assert report["error"] == "ContractViolation"
    assert "more than max_rejected_rows=100 rows rejected" in report["message"]
    assert not [k for k in pipeline.keys(pipeline.r.output_bucket) if k.startswith(key)]
    assert _fanout_objects(pipeline, ex.name) == [keys.fanout_key(ex.name, keys.FANOUT_OUTCOME)]
    assert assert_accounted(pipeline, [key]) == {key: "quarantined"}
