"""Typed mode without a contract: types inferred from the first chunk."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.convert.engine import EngineOptions, convert_stream
from tasks.convert.infer import InferredTyping
from tasks.errors import ContractViolation

DATA = (
    b"id,price,ok,day,at,name,empty\n"
    b"1,9.5,true,2026-11-23,2026-11-23T10:00:00Z,Ann,\n"
    b"-2,,no,2026-11-24,2026-11-23T11:00:00+01:00,,\n"
)


def convert(data: bytes, fmt: str, **options: object) -> tuple[bytes, int]:
    out = io.BytesIO()
    result = convert_stream(
        io.BytesIO(data),
        EngineOptions(outputs=(fmt,), typing=InferredTyping(), **options),  # type: ignore[arg-type]
        {fmt: out.write},  # type: ignore[dict-item]
    )
    return out.getvalue(), result.rows


def test_each_column_gets_the_narrowest_type_its_values_allow() -> None:
    # GIVEN ints, floats, bools, dates, timestamps, text and an always-empty column
    # WHEN converted to Parquet with inferred types
    data, rows = convert(DATA, "parquet")
    table = pq.read_table(io.BytesIO(data))
    # THEN the schema is typed, empties are nulls in typed columns and "" in text ones
    types = {f.name: f.type for f in table.schema}
    assert types["id"] == pa.int64()
    assert types["price"] == pa.float64()
    assert types["ok"] == pa.bool_()
    assert types["day"] == pa.date32()
    assert str(types["at"]) == "timestamp[us, tz=UTC]"
    assert pa.types.is_large_string(types["name"])
    assert pa.types.is_large_string(types["empty"])
    assert rows == 2
    second = table.to_pylist()[1]
    assert (second["id"], second["price"], second["ok"], second["name"]) == (-2, None, False, "")
    assert second["at"].isoformat() == "2026-11-23T10:00:00+00:00"


def test_json_lines_carry_json_types() -> None:
    data, _ = convert(DATA, "jsonl")
    first = json.loads(data.splitlines()[0])
    assert first["id"] == 1 and first["price"] == 9.5 and first["ok"] is True


def test_a_later_value_that_does_not_fit_names_its_row_and_column() -> None:
    # GIVEN a column that looks like ints in the first chunk and has text later
    data = b"n,label\n" + b"".join(b"%d,x\n" % i for i in range(200)) + b"oops,y\n"
    # WHEN converted with small chunks (the first chunk decides the types)
    with pytest.raises(ContractViolation) as caught:
        convert(data, "parquet", chunk_bytes=256)
    # THEN the error says which row and column broke the inferred type
    report = json.loads(str(caught.value))
    assert report["contract"] == "inferred"
    assert report["problems"][0] == {
        "row": 202,
        "column": "n",
        "value": "oops",
        "reason": "not a valid int",
    }


def test_a_header_only_file_gives_an_empty_text_parquet() -> None:
    data, rows = convert(b"a,b\n", "parquet")
    table = pq.read_table(io.BytesIO(data))
    assert rows == 0
    assert table.column_names == ["a", "b"]
