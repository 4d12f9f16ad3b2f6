"""Typed mode without a contract: each column gets the narrowest type every value of the file
fits, inferred and widened by the native core (native/src/types.rs), at most one restart."""

from __future__ import annotations

import io
import json
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.convert.engine import (
    EngineOptions,
    EngineResult,
    Widened,
    Widening,
    convert_restarting,
    convert_stream,
)
from tasks.errors import MalformedContent

DATA = (
    b"id,price,ok,day,at,name,empty\n"
    b"1,9.5,true,2026-11-23,2026-11-23T10:00:00Z,Ann,\n"
    b"-2,,False,2026-11-24,2026-11-23T11:00:00+01:00,,\n"
)


class Run:
    """A conversion that restarts as the pipeline's do: each attempt reads the source again
    and starts its output over."""

    def __init__(self, data: bytes, fmt: str = "parquet", **options: Any) -> None:
        self.data = data
        self.fmt = fmt
        self.options = EngineOptions(outputs=(fmt,), infer=True, **options)  # type: ignore[arg-type]
        self.opened = 0
        self.output = b""

    def attempt(self, options: EngineOptions) -> EngineResult:
        self.opened += 1
        out = io.BytesIO()
        result = convert_stream(io.BytesIO(self.data), options, {self.fmt: out.write})  # type: ignore[dict-item]
        self.output = out.getvalue()
        return result

    def __call__(self) -> EngineResult:
        return convert_restarting(self.attempt, self.options)

    def table(self) -> pa.Table:
        return pq.read_table(io.BytesIO(self.output))

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.output.splitlines()]


def test_each_column_gets_the_narrowest_type_its_values_allow() -> None:
    # GIVEN ints, floats, bools, dates, timestamps, text and an always-empty column
    run = Run(DATA)
    # WHEN converted to Parquet with inferred types
    result = run()
    table = run.table()
    # THEN the schema is typed, empties are nulls in typed columns and "" in text ones
    types = {f.name: f.type for f in table.schema}
    assert types["id"] == pa.int64()
    assert types["price"] == pa.float64()
    assert types["ok"] == pa.bool_()
    assert types["day"] == pa.date32()
    assert str(types["at"]) == "timestamp[us, tz=UTC]"
    assert pa.types.is_large_string(types["name"])
    assert pa.types.is_large_string(types["empty"])
    assert result.rows == 2 and run.opened == 1 and result.widened == ()
    assert result.schema == {
        "id": "int",
        "price": "float",
        "ok": "bool",
        "day": "date",
        "at": "timestamp",
        "name": "string",
        "empty": "string",
    }
    second = table.to_pylist()[1]
    assert (second["id"], second["price"], second["ok"], second["name"]) == (-2, None, False, "")
    assert second["at"].isoformat() == "2026-11-23T10:00:00+00:00"


def test_json_lines_carry_json_types_and_numbers_as_written() -> None:
    run = Run(DATA + b"3,1.50,TRUE,,,x,\n", "jsonl")
    run()
    first, second, third = run.lines()
    assert first["id"] == 1 and first["price"] == 9.5 and first["ok"] is True
    assert second["price"] is None and second["ok"] is False and second["empty"] == ""
    assert third["ok"] is True and third["day"] is None
    assert run.output.splitlines()[2].startswith(b'{"id":3,"price":1.50,')


def test_values_a_wider_type_would_change_stay_exact_as_text() -> None:
    # GIVEN zip codes with leading zeros, ids beyond int64, signed digit strings, digits a
    # double can't hold, and values a double holds exactly (as R writes them)
    data = (
        b"zip,account,phone,pi,speed,big\n"
        b"00501,12345678901234567890,+15551234567,3.14159265358979323846,10.357019999999999,"
        b"10000000000000000000\n"
        b"10001,1,+1,1,2,1\n"
    )
    run = Run(data)
    result = run()
    # THEN nothing is changed: text where a number would lose a digit, floats where exact
    assert result.schema == {
        "zip": "string",
        "account": "string",
        "phone": "string",
        "pi": "string",
        "speed": "float",
        "big": "float",
    }
    row = run.table().to_pylist()[0]
    assert row["zip"] == "00501"
    assert row["account"] == "12345678901234567890"
    assert row["phone"] == "+15551234567"
    assert row["pi"] == "3.14159265358979323846"
    assert row["speed"] == 10.357019999999999
    assert row["big"] == 1e19


def test_null_markers_are_null_in_typed_columns_and_kept_in_text_columns() -> None:
    data = b"n,label,only\nNA,NA,NA\n1,x,N/A\nnull,NULL,\nn/a,,null\n"
    run = Run(data, "jsonl")
    result = run()
    assert result.schema == {"n": "int", "label": "string", "only": "string"}
    rows = run.lines()
    assert [r["n"] for r in rows] == [None, 1, None, None]
    assert [r["label"] for r in rows] == ["NA", "x", "NULL", ""]
    assert [r["only"] for r in rows] == ["NA", "N/A", "", "null"]


def many(count: int, row: bytes) -> bytes:
    return row * count


def test_a_late_value_widens_its_column_and_the_file_is_converted_again() -> None:
    # GIVEN an int column that meets 1.5 long after the first chunk (the one types come from)
    data = b"n,d,label\n" + many(3000, b"7,2026-01-02,x\n") + b"1.5,2026-01-02 03:04:05Z,y\n"
    run = Run(data, chunk_bytes=1024)
    # WHEN converted
    result = run()
    # THEN the source was read again, and the output has the wider types and every row
    assert run.opened == 2
    assert result.schema == {"n": "float", "d": "timestamp", "label": "string"}
    assert result.widened == (
        Widening("n", "int", "float", 3002, "1.5"),
        Widening("d", "date", "timestamp", 3002, "2026-01-02 03:04:05Z"),
    )
    table = run.table()
    assert table.num_rows == result.rows == 3001
    assert table.column("n").to_pylist()[-2:] == [7.0, 1.5]
    assert table.schema.field("d").type == pa.timestamp("us", tz="UTC")


def test_every_widening_of_the_file_is_collected_before_the_one_restart() -> None:
    # GIVEN widenings in different chunks: int -> float, then float -> string, bool -> string
    data = (
        b"n,b\n"
        + many(1000, b"1,true\n")
        + b"2.5,false\n"
        + many(1000, b"3,true\n")
        + b"abc,maybe\n"
        + many(1000, b"4,false\n")
    )
    run = Run(data, "jsonl", chunk_bytes=512)
    result = run()
    # THEN one restart gives the types every value fits
    assert run.opened == 2
    assert result.schema == {"n": "string", "b": "string"}
    assert [w.to_type for w in result.widened] == ["string", "string"]
    assert result.widened[0].row == 1002  # where n first didn't fit
    lines = run.lines()
    assert lines[0] == {"n": "1", "b": "true"} and lines[1001]["n"] == "3"
    assert len(lines) == result.rows == 3002


def test_a_column_empty_at_first_gets_the_type_of_its_later_values() -> None:
    data = b"id,later\n" + many(2000, b"1,\n") + many(10, b"2,42\n") + b"3,NA\n"
    run = Run(data, chunk_bytes=1024)
    result = run()
    assert result.schema == {"id": "int", "later": "int"}
    assert result.widened == (Widening("later", "string", "int", 2002, "42"),)
    assert run.table().column("later").to_pylist()[-3:] == [42, 42, None]


def test_a_column_empty_at_first_and_text_later_needs_no_restart() -> None:
    data = b"id,note\n" + many(2000, b"1,\n") + b"2,hello\n"
    run = Run(data, "jsonl", chunk_bytes=1024)
    result = run()
    assert run.opened == 1 and result.widened == ()
    assert result.schema == {"id": "int", "note": "string"}
    assert run.lines()[-1] == {"id": 2, "note": "hello"}


def test_an_int_beyond_int64_late_widens_to_text_not_to_a_lossy_float() -> None:
    data = b"id\n" + many(2000, b"12\n") + b"98765432109876543210\n"
    run = Run(data, chunk_bytes=1024)
    result = run()
    assert result.schema == {"id": "string"}
    assert run.table().column("id").to_pylist()[-1] == "98765432109876543210"


def test_an_int_column_with_a_value_a_double_cannot_hold_does_not_become_float() -> None:
    # 9007199254740993 fits int64 but no double: a later 0.5 makes the column text, not float
    data = b"x\n9007199254740993\n" + many(2000, b"1\n") + b"0.5\n"
    run = Run(data, chunk_bytes=1024)
    assert run().schema == {"x": "string"}
    assert run.table().column("x").to_pylist()[0] == "9007199254740993"


def test_a_bad_row_after_a_widening_is_still_named() -> None:
    data = b"n,m\n" + many(2000, b"1,2\n") + b"1.5,2\n" + many(10, b"1,2\n") + b"1,2,3\n"
    with pytest.raises(MalformedContent, match="row 2013: expected 2 fields"):
        Run(data, chunk_bytes=1024)()


def test_given_types_that_a_value_does_not_fit_say_the_source_changed() -> None:
    options = EngineOptions(outputs=("jsonl",), types=("int",))
    with pytest.raises(MalformedContent, match=r'row 3: column "n": "x" is not a valid int'):
        convert_stream(io.BytesIO(b"n\n1\nx\n"), options, {"jsonl": io.BytesIO().write})


def test_without_a_restart_the_caller_sees_widened() -> None:
    data = b"n\n" + many(2000, b"1\n") + b"x\n"
    options = EngineOptions(outputs=("jsonl",), infer=True, chunk_bytes=1024)
    with pytest.raises(Widened) as caught:
        convert_stream(io.BytesIO(data), options, {"jsonl": io.BytesIO().write})
    assert caught.value.types == ("string",)
    assert caught.value.result.columns == ["n"]


def test_a_header_only_file_gives_an_empty_text_parquet() -> None:
    run = Run(b"a,b\n")
    result = run()
    assert result.rows == 0 and result.schema == {"a": "string", "b": "string"}
    assert run.table().column_names == ["a", "b"]


def test_typed_parquet_reads_the_same_in_pyarrow_polars_and_duckdb(tmp_path: Any) -> None:
    run = Run(DATA)
    run()
    path = tmp_path / "typed.parquet"
    path.write_bytes(run.output)
    frame = pl.read_parquet(path)
    assert frame.schema["id"] == pl.Int64 and frame.schema["at"] == pl.Datetime("us", "UTC")
    assert frame.schema["day"] == pl.Date and frame["price"].to_list() == [9.5, None]
    got = duckdb.sql(f"select id, price, ok, day from '{path}' order by id").fetchall()
    assert [tuple(map(str, r)) for r in got] == [
        ("-2", "None", "False", "2026-11-24"),
        ("1", "9.5", "True", "2026-11-23"),
    ]


def test_a_widening_names_a_long_value_cut_short() -> None:
    data = b"n\n" + many(2000, b"1\n") + b"x" * 5000 + b"\n"
    result = Run(data, "jsonl", chunk_bytes=1024)()
    (widening,) = result.widened
    assert widening.row == 2002 and len(widening.value) == 80
    assert widening.value.startswith("xxx") and widening.value.endswith("…")
