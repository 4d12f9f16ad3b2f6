"""`chute convert` types by inference unless --text; `chute contract suggest` prints a contract
that pins the inferred schema (and loads as one)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from chute.cli import app
from tasks.data_contracts.config import parse_contracts

# The shape of R's nycflights13 weather table: NA for missing values, 17-digit doubles,
# timestamps with Z, a column whose values are all NA in its first rows.
WEATHER = (
    b"origin,year,hour,temp,wind_speed,wind_gust,precip,time_hour\n"
    b"EWR,2013,1,39.02,10.357019999999999,NA,0,2013-01-01T06:00:00Z\n"
    b"EWR,2013,2,NA,8.05546,NA,0,2013-01-01T07:00:00Z\n"
    b"JFK,2013,3,39.92,NA,20.71404,0.01,2013-01-01T08:00:00Z\n"
)


def test_convert_types_every_numeric_column_with_nulls_and_time_hour_as_a_timestamp(
    tmp_path: Path,
) -> None:
    source = tmp_path / "weather.csv"
    source.write_bytes(WEATHER)
    out = tmp_path / "weather.parquet"
    result = CliRunner().invoke(app, ["convert", str(source), str(out)])
    assert result.exit_code == 0, result.output
    assert "types: origin string, year int, hour int, temp float" in result.output
    table = pq.read_table(out)
    types = {f.name: f.type for f in table.schema}
    assert types["year"] == types["hour"] == pa.int64()
    assert types["temp"] == types["wind_speed"] == types["wind_gust"] == pa.float64()
    assert types["precip"] == pa.float64()
    assert types["time_hour"] == pa.timestamp("us", tz="UTC")
    assert table.column("temp").to_pylist() == [39.02, None, 39.92]
    assert table.column("wind_speed").to_pylist()[0] == 10.357019999999999


def test_convert_text_keeps_every_value_a_string(tmp_path: Path) -> None:
    source = tmp_path / "weather.csv"
    source.write_bytes(WEATHER)
    out = tmp_path / "weather.jsonl"
    result = CliRunner().invoke(app, ["convert", "--text", str(source), str(out)])
    assert result.exit_code == 0, result.output
    first = json.loads(out.read_text().splitlines()[0])
    assert first["year"] == "2013" and first["wind_gust"] == "NA"
    assert "types:" not in result.output


def test_a_widening_is_reported_by_convert(tmp_path: Path) -> None:
    source = tmp_path / "late.csv"
    source.write_bytes(b"n\n" + b"1\n" * 3_000_000 + b"2.5\n")
    out = tmp_path / "late.jsonl"
    result = CliRunner().invoke(app, ["convert", str(source), str(out)])
    assert result.exit_code == 0, result.output
    assert "widened n: int -> float at row 3000002 ('2.5')" in result.output
    assert out.read_text().splitlines()[-1] == '{"n":2.5}'


def test_contract_suggest_prints_a_contract_that_loads_with_the_inferred_types(
    tmp_path: Path,
) -> None:
    source = tmp_path / "weather.csv.gz"
    import gzip

    source.write_bytes(gzip.compress(WEATHER))
    result = CliRunner().invoke(app, ["contract", "suggest", str(source)])
    assert result.exit_code == 0, result.output
    contracts = parse_contracts(result.output)
    contract = contracts.get("weather")
    assert contract.match.suffixes == (".csv.gz",)
    assert {c.name: c.type for c in contract.columns} == {
        "origin": "string",
        "year": "int",
        "hour": "int",
        "temp": "float",
        "wind_speed": "float",
        "wind_gust": "float",
        "precip": "float",
        "time_hour": "timestamp",
    }


def rows(path: Path) -> list[dict[str, object]]:
    """JSON Lines with each timestamp as an instant (the writers spell them differently:
    inference keeps them as written, a contract writes them in UTC)."""
    out = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        row["time_hour"] = datetime.fromisoformat(row["time_hour"])
        out.append(row)
    return out


def test_the_suggested_contract_types_the_file_as_inference_did(tmp_path: Path) -> None:
    # GIVEN the contract suggested for a file with NA markers, pinned in a contracts file
    source = tmp_path / "weather.csv"
    source.write_bytes(WEATHER)
    suggested = CliRunner().invoke(app, ["contract", "suggest", str(source)]).output
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(suggested)
    # WHEN the file is converted with it
    out = tmp_path / "pinned.jsonl"
    args = ["convert", str(source), str(out), "--contract", "weather"]
    result = CliRunner().invoke(app, [*args, "--contracts", str(contracts)])
    # THEN it passes, with the NA markers null in typed columns, as inference wrote them
    assert result.exit_code == 0, result.output
    inferred = tmp_path / "inferred.jsonl"
    assert CliRunner().invoke(app, ["convert", str(source), str(inferred)]).exit_code == 0
    pinned_rows = rows(out)
    assert pinned_rows == rows(inferred)
    assert pinned_rows[1]["temp"] is None and pinned_rows[0]["wind_gust"] is None


def test_chute_convert_starts_without_the_other_commands_imports(tmp_path: Path) -> None:
    # GIVEN a small file  WHEN `chute convert` runs in a fresh interpreter
    source = tmp_path / "a.csv"
    source.write_bytes(b"a\n1\n")
    script = (
        "import sys\n"
        "from chute.cli import main\n"
        "try:\n"
        f"    main(['convert', {str(source)!r}, {str(tmp_path / 'a.jsonl')!r}])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        "heavy = ('boto3', 'polars', 'chute.local.embedded')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    # THEN it converted, and neither boto3, polars nor the embedded runtime was imported
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "a.jsonl").read_text() == '{"a":1}\n'
