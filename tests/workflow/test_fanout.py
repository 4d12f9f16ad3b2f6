"""One file across many workers on the embedded engine: the same workflow as on AWS plans the
parts, converts them in a Distributed Map on the local Lambda workers, commits and archives —
and the outputs equal a single-worker conversion of the same file exactly."""

from __future__ import annotations

import io
import random
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from chute.local.embedded import EmbeddedAws
from tasks.formats import keys
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


def _single(tmp_path: Path, body: bytes, fmt: str) -> bytes:
    src, dst = tmp_path / "data.csv", tmp_path / f"data.{fmt}"
    src.write_bytes(body)
    chute = Path(sys.executable).parent / "chute"
    subprocess.run([str(chute), "convert", str(src), str(dst), "--to", fmt], check=True)
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
