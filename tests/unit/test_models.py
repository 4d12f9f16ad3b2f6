"""tasks.models: the step payloads that travel between states (FileSpec, Target, Plan)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tasks.models import FileSpec, ModelError, ObjectRef, Plan, Target

REF = ObjectRef(bucket="staging", key="in/déjà vu+1.csv.zst", size=42, etag="abc", version_id="v1")


# --- FileSpec -----------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", ["gzip", "zstd", "bz2", "none"])
@pytest.mark.parametrize("delimiter", [",", "\t", "|", ";", None])
def test_file_spec_round_trips_through_json(compression: Any, delimiter: str | None) -> None:
    spec = FileSpec(ref=REF, compression=compression, delimiter=delimiter)
    assert FileSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_file_spec_dict_is_the_object_reference_plus_how_to_read_it() -> None:
    spec = FileSpec(ref=REF, compression="zstd", delimiter=";")
    assert spec.to_dict() == {**REF.to_dict(), "compression": "zstd", "delimiter": ";"}


def test_file_spec_defaults_to_uncompressed_with_a_sniffed_delimiter() -> None:
    # GIVEN a bare object reference (no compression, no delimiter)
    spec = FileSpec.from_dict(REF.to_dict())
    assert (spec.compression, spec.delimiter) == ("none", None)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"compression": "xz"}, "unknown compression 'xz'"),
        ({"compression": None}, "unknown compression None"),
        ({"delimiter": ":"}, "unsupported delimiter ':'"),
        ({"delimiter": ""}, "unsupported delimiter ''"),
        ({"delimiter": 44}, "unsupported delimiter 44"),
    ],
)
def test_file_spec_rejects_what_the_engine_cannot_read(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelError) as caught:
        FileSpec.from_dict({**REF.to_dict(), **extra})
    assert message in str(caught.value)


def test_file_spec_needs_an_object() -> None:
    with pytest.raises(ModelError):
        FileSpec.from_dict(["not", "an", "object"])


# --- Target -------------------------------------------------------------------------------------
def test_target_defaults_to_json_lines_in_text_mode() -> None:
    target = Target(bucket="out", key="in/x.csv")
    assert (target.formats, target.contract) == (("jsonl",), None)


def test_target_names_one_object_per_format_under_its_base_key() -> None:
    target = Target(bucket="out", key="in/a b/x.csv", formats=("parquet", "jsonl"), contract="c")

    assert target.object_key("parquet") == "in/a b/x.csv.parquet"
    assert target.object_key("jsonl") == "in/a b/x.csv.jsonl"
    assert target.rejected_key == "in/a b/x.csv.rejected.jsonl"


def test_target_dict_lists_formats_in_order_and_the_keys_they_write() -> None:
    target = Target(bucket="out", key="in/x.csv", formats=("parquet", "jsonl"), contract="orders")
    assert target.to_dict() == {
        "bucket": "out",
        "key": "in/x.csv",
        "formats": ["parquet", "jsonl"],
        "contract": "orders",
        "infer": False,
        "keys": {"parquet": "in/x.csv.parquet", "jsonl": "in/x.csv.jsonl"},
    }


@pytest.mark.parametrize(
    "target",
    [
        Target(bucket="out", key="in/x.csv"),
        Target(bucket="out", key="in/x.csv", formats=("parquet",), contract="orders"),
        Target(bucket="out", key="in/x.csv", formats=("jsonl", "parquet")),
    ],
)
def test_target_round_trips_through_json(target: Target) -> None:
    assert Target.from_dict(json.loads(json.dumps(target.to_dict()))) == target


def test_target_from_a_dict_without_formats_is_json_lines() -> None:
    target = Target.from_dict({"bucket": "out", "key": "in/x.csv"})
    assert (target.formats, target.contract) == (("jsonl",), None)


@pytest.mark.parametrize(
    "formats",
    [[], ["csv"], ["jsonl", "xml"], "jsonl", None, [None]],
)
def test_target_rejects_bad_formats(formats: Any) -> None:
    with pytest.raises(ModelError) as caught:
        Target.from_dict({"bucket": "out", "key": "in/x.csv", "formats": formats})
    assert "formats must be a non-empty list" in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [
        {"key": "in/x.csv"},
        {"bucket": "out"},
        {"bucket": "out", "key": ""},
        {"bucket": "out", "key": "in/x.csv", "contract": 3},
    ],
)
def test_target_rejects_missing_or_invalid_fields(data: dict[str, Any]) -> None:
    with pytest.raises(ModelError):
        Target.from_dict(data)


# --- Plan ---------------------------------------------------------------------------------------
def test_plan_round_trips_through_json() -> None:
    plan = Plan(
        file=FileSpec(ref=REF, compression="zstd", delimiter="|"),
        target=Target(bucket="out", key="in/déjà vu+1.csv", formats=("parquet",), contract="x"),
    )
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


@pytest.mark.parametrize("data", [None, {}, {"file": REF.to_dict()}, {"target": {}}])
def test_plan_needs_a_file_and_a_target(data: Any) -> None:
    with pytest.raises(ModelError):
        Plan.from_dict(data)
