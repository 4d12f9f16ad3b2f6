"""Data contracts: the config file, matching keys, planning a header, validating chunks of rows."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.convert.engine import EngineOptions, convert_stream
from tasks.convert.typed import ContractTyping
from tasks.data_contracts.config import ContractConfigError, load_contracts, parse_contracts
from tasks.data_contracts.model import (
    MESSAGE_LIMIT,
    Column,
    Contract,
    HeaderPlan,
    Match,
    OnError,
    Problem,
    violation_message,
)
from tasks.errors import ContractViolation, PermanentError

REPO_CONTRACTS = Path(__file__).parents[2] / "contracts" / "contracts.toml"

MINIMAL = """
[settings]
unmatched = "reject"

[contracts.people]
match = { suffixes = [".csv"] }
outputs = ["jsonl"]

[[contracts.people.columns]]
name = "id"
type = "int"
"""


def make(*columns: Column, **options: Any) -> Contract:
    """A contract built directly (config parsing has its own tests)."""
    return Contract(name="t", match=Match(suffixes=(".csv",)), columns=columns, **options)


@dataclass(frozen=True)
class Checked:
    """What converting a file under a contract gave (the native core checks every value)."""

    table: pa.Table
    """The rows written, typed: the Parquet output read back."""
    rejected: list[dict[str, Any]]
    """The rejected rows' output (every file column as written, ``_row``, ``_errors``)."""
    problems: tuple[Problem, ...]
    problem_count: int
    bad_rows: int

    @property
    def valid(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.table.to_pylist()
        return rows

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # a lone empty field is written ""
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def tolerant(contract: Contract) -> Contract:
    """The contract, dropping any number of bad rows (so that every problem is seen)."""
    limit = contract.on_error.report_limit
    return replace(contract, on_error=OnError("drop_rows", 10**9, report_limit=limit))


def run(contract: Contract, data: bytes, chunk_bytes: int = 4 << 20) -> Checked:
    """Convert ``data`` to both formats under ``contract``."""
    jsonl, parquet, rejected = io.BytesIO(), io.BytesIO(), io.BytesIO()
    options = EngineOptions(
        outputs=("jsonl", "parquet"),
        delimiter=",",
        typing=ContractTyping(contract),
        chunk_bytes=chunk_bytes,
    )
    sinks = {"jsonl": jsonl.write, "parquet": parquet.write}
    result = convert_stream(io.BytesIO(data), options, sinks, rejected_sink=rejected.write)
    table = pq.read_table(io.BytesIO(parquet.getvalue()))
    # The JSON Lines are what polars writes for the same typed rows, byte for byte (polars
    # typed and wrote contract mode's JSON Lines before the native core did).
    oracle = io.BytesIO()
    pl.read_parquet(io.BytesIO(parquet.getvalue())).write_ndjson(oracle)
    assert jsonl.getvalue() == oracle.getvalue()
    assert result.rows == table.num_rows
    lines = rejected.getvalue().decode().splitlines()
    return Checked(
        table=table,
        rejected=[json.loads(line) for line in lines],
        problems=result.problems,
        problem_count=result.problem_count,
        bad_rows=result.rejected_rows,
    )


def check(column: Column, values: list[str], **options: Any) -> Checked:
    """Check one column of values: a file whose header is just that column (bad rows dropped,
    every problem counted)."""
    contract = tolerant(make(column, **options))
    return run(contract, csv_bytes([column.name], [[v] for v in values]))


def convert(
    contract: Contract, columns: dict[str, list[str]], chunk_bytes: int = 4 << 20
) -> Checked:
    """A file of these columns (name: values) converted under ``contract`` as it is."""
    rows = [list(row) for row in zip(*columns.values(), strict=True)]
    return run(contract, csv_bytes(list(columns), rows), chunk_bytes)


def violation(excinfo: pytest.ExceptionInfo[ContractViolation]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(str(excinfo.value))
    return report


# --- the config file -----------------------------------------------------------------------
def test_files_no_contract_matches_are_typed_by_inference_unless_the_settings_say() -> None:
    assert parse_contracts("").unmatched == "infer"
    assert parse_contracts("[settings]\n").unmatched == "infer"
    assert parse_contracts('[settings]\nunmatched = "text"\n').unmatched == "text"


def test_the_repository_contracts_file_loads() -> None:
    # GIVEN the contracts file shipped in the repository  WHEN loaded
    contracts = load_contracts(REPO_CONTRACTS)

    # THEN both example contracts are there, in file order, with their settings
    assert contracts.names == ("acme-orders", "device-readings")
    assert contracts.unmatched == "infer"
    orders = contracts.get("acme-orders")
    assert orders.match.prefixes == ("partners/acme/orders/",)
    assert orders.dialect.delimiter == ","
    assert orders.outputs == ("jsonl", "parquet")
    assert (orders.extra_columns, orders.missing_columns) == ("drop", "null")
    assert orders.on_error == OnError("drop_rows", max_rejected_rows=100, report_limit=20)
    assert orders.column("currency").allowed == ("EUR", "USD", "GBP")
    assert not orders.column("gift_wrap").required
    readings = contracts.get("device-readings")
    assert readings.dialect.delimiter == "\t"
    assert readings.column("channel").allowed == (1, 2, 3, 4)
    assert readings.on_error == OnError("reject", report_limit=50)


def test_the_repository_contracts_route_their_keys() -> None:
    contracts = load_contracts(REPO_CONTRACTS)
    assert contracts.match("partners/acme/orders/2026/05/day.CSV.GZ") == contracts.get(
        "acme-orders"
    )
    assert contracts.match("devices/AB-123456/readings.tsv") == contracts.get("device-readings")
    assert contracts.match("partners/other/orders.csv") is None


def test_defaults_of_a_minimal_contract() -> None:
    # GIVEN a contract with only the required keys  WHEN parsed
    contract = parse_contracts(MINIMAL).get("people")

    # THEN the defaults are the strict ones: sniffed delimiter, reject everything unexpected
    assert contract.dialect.delimiter is None and contract.dialect.quote == '"'
    assert (contract.extra_columns, contract.missing_columns) == ("reject", "reject")
    assert contract.on_error == OnError("reject", max_rejected_rows=0, report_limit=20)
    assert contract.columns == (Column("id", "int", required=True, nullable=True),)


def test_get_an_unknown_contract_names_the_known_ones() -> None:
    with pytest.raises(
        ContractConfigError, match=r"no contract named 'orders' \(known: 'people'\)"
    ):
        parse_contracts(MINIMAL).get("orders")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ContractConfigError, match=r"nope\.toml: can't read"):
        load_contracts(tmp_path / "nope.toml")


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "contracts.toml"
    path.write_text(MINIMAL.replace('type = "int"', 'type = "integer"'))
    with pytest.raises(ContractConfigError) as excinfo:
        load_contracts(path)
    assert str(excinfo.value).startswith(f"{path}: contracts.people.columns.id.type: ")


def contract_with(body: str, columns: str = '[[contracts.c.columns]]\nname = "a"\n') -> str:
    """A config with one contract ``c`` whose keys are ``body`` (plus match/outputs if absent)."""
    if "match" not in body:
        body += '\nmatch = { suffixes = [".csv"] }'
    if "outputs" not in body:
        body += '\noutputs = ["jsonl"]'
    return f'[settings]\nunmatched = "text"\n\n[contracts.c]\n{body}\n\n{columns}'


def column_with(body: str, **contract_keys: str) -> str:
    keys = "\n".join(f"{k} = {v}" for k, v in contract_keys.items())
    return contract_with(keys, f'[[contracts.c.columns]]\nname = "a"\n{body}\n')


CONFIG_ERRORS = {
    # the file and the settings
    "not toml": ("[settings\n", "not valid TOML"),
    "bad unmatched": (
        '[settings]\nunmatched = "convert"\n',
        "settings.unmatched: expected one of 'infer', 'text', 'reject', got 'convert'",
    ),
    "unknown top key": (
        '[settings]\nunmatched = "text"\n[contract.x]\n',
        "contract: unknown key; expected one of 'contracts', 'settings'",
    ),
    "unknown settings key": (
        '[settings]\nunmatched = "text"\nverbose = true\n',
        "settings.verbose: unknown key",
    ),
    # contracts
    "bad contract name": (
        '[settings]\nunmatched = "text"\n[contracts."my orders"]\n',
        "contracts.my orders: contract names use letters, digits",
    ),
    "contract not a table": (
        '[settings]\nunmatched = "text"\n[contracts]\nc = 1\n',
        "contracts.c: expected a table, got an integer",
    ),
    "unknown contract key": (
        contract_with('output = ["jsonl"]'),
        "contracts.c.output: unknown key",
    ),
    "no match": (contract_with("match = {}"), "contracts.c.match: give prefixes, suffixes or both"),
    "match empty string": (
        contract_with('match = { prefixes = [""] }'),
        "contracts.c.match.prefixes: empty strings match every key",
    ),
    "match not a list": (
        contract_with('match = { suffixes = ".csv" }'),
        "contracts.c.match.suffixes: expected a list of strings, got a string",
    ),
    "unknown match key": (
        contract_with('match = { suffix = [".csv"] }'),
        "contracts.c.match.suffix: unknown key; expected one of 'prefixes', 'suffixes'",
    ),
    "no outputs": (contract_with("outputs = []"), "contracts.c.outputs: list at least one"),
    "unknown output": (
        contract_with('outputs = ["csv"]'),
        "contracts.c.outputs: unknown format 'csv'; use 'jsonl', 'parquet'",
    ),
    "repeated output": (
        contract_with('outputs = ["jsonl", "jsonl"]'),
        "contracts.c.outputs: a format is listed twice",
    ),
    "bad delimiter": (
        contract_with('dialect = { delimiter = ":" }'),
        "contracts.c.dialect.delimiter: expected one of ',', '\\t', '|', ';', got ':'",
    ),
    "bad quote": (
        contract_with("dialect = { quote = '`' }"),
        "contracts.c.dialect.quote: expected",
    ),
    "bad extra policy": (
        contract_with('extra_columns = "ignore"'),
        "contracts.c.extra_columns: expected one of 'reject', 'drop', 'keep', got 'ignore'",
    ),
    "max rows with reject": (
        contract_with("on_error = { max_rejected_rows = 5 }"),
        'contracts.c.on_error.max_rejected_rows: only applies to policy = "drop_rows"',
    ),
    "drop rows without max": (
        contract_with('on_error = { policy = "drop_rows" }'),
        'contracts.c.on_error.max_rejected_rows: required with policy = "drop_rows"',
    ),
    "negative max": (
        contract_with('on_error = { policy = "drop_rows", max_rejected_rows = -1 }'),
        "contracts.c.on_error.max_rejected_rows: must be at least 0, got -1",
    ),
    "float max": (
        contract_with('on_error = { policy = "drop_rows", max_rejected_rows = 1.5 }'),
        "contracts.c.on_error.max_rejected_rows: expected an integer, got a float",
    ),
    "bool report limit": (
        contract_with("on_error = { report_limit = true }"),
        "contracts.c.on_error.report_limit: expected an integer, got a boolean",
    ),
    "no columns": (contract_with("", columns=""), "contracts.c.columns: define at least one"),
    # columns
    "column without name": (
        contract_with("", '[[contracts.c.columns]]\ntype = "int"\n'),
        "contracts.c.columns[0].name: missing",
    ),
    "unknown column key": (
        column_with("nulable = false"),
        "contracts.c.columns[0].nulable: unknown",
    ),
    "bad column type": (
        column_with('type = "integer"'),
        "contracts.c.columns.a.type: expected one of 'string', 'int', 'float', 'bool', 'date', "
        "'timestamp', got 'integer'",
    ),
    "required not bool": (
        column_with('required = "yes"'),
        "contracts.c.columns.a.required: expected true or false, got a string",
    ),
    "duplicate column": (
        contract_with(
            "", '[[contracts.c.columns]]\nname = "a"\n[[contracts.c.columns]]\nname = "a"'
        ),
        "contracts.c.columns[1].name: duplicate column 'a'",
    ),
    "reserved column": (
        contract_with("", '[[contracts.c.columns]]\nname = "_row"\n'),
        "contracts.c.columns[0].name: '_row' is reserved",
    ),
    "invalid regex": (
        column_with('pattern = "ORD-[0-9"'),
        "contracts.c.columns.a.pattern: invalid regex",
    ),
    "look-around regex": (
        column_with('pattern = "(?=x)x"'),
        "contracts.c.columns.a.pattern: invalid regex",
    ),
    "pattern on an int": (
        column_with('type = "int"\npattern = "[0-9]+"'),
        "contracts.c.columns.a.pattern: only string columns take a pattern (this one is int)",
    ),
    "allowed on a float": (
        column_with('type = "float"\nallowed = [1.0]'),
        "contracts.c.columns.a.allowed: only string and int columns take allowed values",
    ),
    "allowed wrong type": (
        column_with('type = "int"\nallowed = [1, true]'),
        "contracts.c.columns.a.allowed: expected a non-empty list of int values",
    ),
    "allowed empty": (column_with("allowed = []"), "expected a non-empty list of str values"),
    "allowed repeated": (column_with('allowed = ["x", "x"]'), "a value is listed twice"),
    "allowed too big": (
        column_with('type = "int"\nallowed = [9223372036854775808]'),
        "contracts.c.columns.a.allowed: values must fit in 64 bits",
    ),
    # how required, missing_columns and nullable fit together
    "optional column but missing rejected": (
        column_with("required = false"),
        'contracts.c.columns.a.required: required = false needs missing_columns = "null"',
    ),
    "null policy without optional columns": (
        column_with("", missing_columns='"null"'),
        'contracts.c.missing_columns: "null" applies to optional columns only',
    ),
    "optional and not nullable": (
        column_with("required = false\nnullable = false", missing_columns='"null"'),
        "contracts.c.columns.a.nullable: an optional column can't be nullable = false",
    ),
}


@pytest.mark.parametrize(("text", "message"), CONFIG_ERRORS.values(), ids=CONFIG_ERRORS.keys())
def test_config_errors_say_what_and_where(text: str, message: str) -> None:
    # GIVEN a contracts file with one mistake  WHEN parsed
    with pytest.raises(ContractConfigError) as excinfo:
        parse_contracts(text, source="contracts.toml")

    # THEN the message names the file, the field and what is wrong
    assert str(excinfo.value).startswith("contracts.toml: ")
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    "name", [k for k, (_, message) in CONFIG_ERRORS.items() if "pattern" not in message]
)
def test_without_compiling_patterns_every_other_mistake_is_still_found(name: str) -> None:
    # GIVEN a contracts file with one mistake that isn't a pattern's syntax
    text, message = CONFIG_ERRORS[name]
    # WHEN parsed as Validate does, without compiling patterns  THEN the same error
    with pytest.raises(ContractConfigError, match=re.escape(message)):
        parse_contracts(text, source="contracts.toml", compile_patterns=False)


def test_without_compiling_patterns_only_the_regex_syntax_is_left_unchecked() -> None:
    # GIVEN a string column whose pattern Rust's regex rejects (look-around)
    text = column_with('pattern = "(?=x)x"')
    # WHEN parsed without compiling patterns  THEN it loads, pattern as written
    contracts = parse_contracts(text, compile_patterns=False)
    assert contracts.get("c").column("a").pattern == "(?=x)x"
    # ...and the full check still rejects it; a pattern on an int column is rejected either way
    with pytest.raises(ContractConfigError, match="invalid regex"):
        parse_contracts(text)
    with pytest.raises(ContractConfigError, match="only string columns take a pattern"):
        parse_contracts(column_with('type = "int"\npattern = "(?=x)x"'), compile_patterns=False)


def test_no_contracts_at_all_is_valid() -> None:
    contracts = parse_contracts('[settings]\nunmatched = "reject"\n')
    assert contracts.contracts == () and contracts.match("a.csv") is None


# --- matching keys -------------------------------------------------------------------------
def test_match_needs_both_prefix_and_suffix() -> None:
    rule = Match(prefixes=("in/", "drop/"), suffixes=(".csv", ".csv.gz"))
    assert rule.matches("in/a.csv") and rule.matches("drop/x/y.csv.gz")
    assert not rule.matches("in/a.tsv")  # prefix without suffix
    assert not rule.matches("out/a.csv")  # suffix without prefix


def test_suffixes_ignore_case_prefixes_do_not() -> None:
    rule = Match(prefixes=("in/",), suffixes=(".csv",))
    assert rule.matches("in/A.CSV")
    assert not rule.matches("IN/a.csv")


def test_a_single_list_is_enough() -> None:
    assert Match(prefixes=("in/",)).matches("in/anything.bin")
    assert Match(suffixes=(".tsv",)).matches("any/where.TSV")


def test_first_contract_in_file_order_wins() -> None:
    # GIVEN two contracts that both match in/special/x.csv, the specific one first
    text = (
        MINIMAL.replace("[contracts.people]", "[contracts.special]")
        .replace('match = { suffixes = [".csv"] }', 'match = { prefixes = ["in/special/"] }')
        .replace("contracts.people.columns", "contracts.special.columns")
        + MINIMAL.split('unmatched = "reject"')[1]
    )
    contracts = parse_contracts(text)
    assert contracts.names == ("special", "people")

    # WHEN matching  THEN the first in file order wins; others fall through to the next
    assert contracts.match("in/special/x.csv") == contracts.get("special")
    assert contracts.match("in/other/x.csv") == contracts.get("people")
    assert contracts.match("in/other/x.tsv") is None  # unmatched: settings.unmatched decides


# --- planning the header -------------------------------------------------------------------
ORDERS = (Column("id", "int"), Column("name"), Column("note", required=False))


def test_plan_of_a_matching_header() -> None:
    contract = make(*ORDERS, missing_columns="null")
    plan = contract.plan_header(["name", "note", "id"])
    assert plan == HeaderPlan(
        header=("name", "note", "id"),
        present=("id", "name", "note"),
        missing=(),
        kept=(),
        dropped=(),
        output_columns=("id", "name", "note"),  # contract order, not file order
    )


def test_missing_required_columns_are_listed_in_the_violation() -> None:
    # GIVEN a header without the required columns id and name
    contract = make(*ORDERS, missing_columns="null")

    # WHEN planned  THEN a ContractViolation (permanent: quarantine) lists them at row 1
    with pytest.raises(ContractViolation) as excinfo:
        contract.plan_header(["note"])
    assert isinstance(excinfo.value, PermanentError)
    assert violation(excinfo) == {
        "contract": "t",
        "problemCount": 2,
        "badRows": 0,
        "problems": [
            {"row": 1, "column": "id", "value": "", "reason": "required column missing"},
            {"row": 1, "column": "name", "value": "", "reason": "required column missing"},
        ],
    }


def test_missing_optional_column_becomes_a_null_column() -> None:
    # GIVEN a file without the optional column "note"
    contract = make(*ORDERS, missing_columns="null")
    plan = contract.plan_header(["id", "name"])
    assert plan.missing == ("note",)

    # WHEN it is converted  THEN "note" is in the output, all null, typed
    result = convert(contract, {"id": ["1"], "name": ["a"]})
    assert result.valid == [{"id": 1, "name": "a", "note": None}]
    assert result.schema.field("note").type == pa.large_string()


def test_extra_columns_rejected() -> None:
    contract = make(Column("id"), extra_columns="reject")
    with pytest.raises(ContractViolation) as excinfo:
        contract.plan_header(["id", "x", "y"])
    problems = violation(excinfo)["problems"]
    assert [(p["row"], p["column"], p["reason"]) for p in problems] == [
        (1, "x", "column not in the contract"),
        (1, "y", "column not in the contract"),
    ]


def test_extra_columns_dropped() -> None:
    contract = make(Column("id"), extra_columns="drop")
    plan = contract.plan_header(["x", "id"])
    assert (plan.dropped, plan.kept, plan.output_columns) == (("x",), (), ("id",))
    result = convert(contract, {"x": ["?"], "id": ["1"]})
    assert result.valid == [{"id": "1"}]


def test_extra_columns_kept_as_strings_after_the_contract_columns() -> None:
    contract = make(Column("id", "int"), extra_columns="keep")
    plan = contract.plan_header(["y", "id", "x"])
    assert (plan.kept, plan.output_columns) == (("y", "x"), ("id", "y", "x"))
    result = convert(contract, {"y": ["1"], "id": ["2"], "x": [""]})
    assert result.valid == [{"id": 2, "y": "1", "x": ""}]
    assert result.schema == pa.schema(
        [("id", pa.int64()), ("y", pa.large_string()), ("x", pa.large_string())]
    )


@pytest.mark.parametrize(
    ("header", "reason"),
    [(["id", "id"], "duplicate column in the header"), (["id", "_row"], "reserved column name")],
)
def test_duplicate_and_reserved_header_names_are_violations(header: list[str], reason: str) -> None:
    contract = make(Column("id"), extra_columns="keep")
    with pytest.raises(ContractViolation) as excinfo:
        contract.plan_header(header)
    assert [p["reason"] for p in violation(excinfo)["problems"]] == [reason]


# --- validating values, type by type -------------------------------------------------------
BAD = object()
"""Expected outcome: the value is a violation."""

TYPED_CASES: list[tuple[str, str, object]] = [
    ("int", "42", 42),
    ("int", "+7", 7),
    ("int", "-7", -7),
    ("int", "007", 7),
    ("int", "9223372036854775807", 9223372036854775807),
    ("int", "9223372036854775808", BAD),  # overflows Int64
    ("int", " 5", BAD),  # spaces are not trimmed
    ("int", "5 ", BAD),
    ("int", "1.0", BAD),
    ("int", "1e3", BAD),
    ("int", "1_000", BAD),
    ("int", "0x10", BAD),
    ("int", "", None),
    ("float", "1.5", 1.5),
    ("float", "-3e2", -300.0),
    ("float", "+.5", 0.5),
    ("float", "7", 7.0),
    ("float", "NaN", BAD),  # not finite: JSON can't carry it
    ("float", "inf", BAD),
    ("float", "-Infinity", BAD),
    ("float", "1e400", BAD),  # overflows to inf
    ("float", "1,5", BAD),
    ("float", " 1.5", BAD),
    ("float", "", None),
    ("bool", "true", True),
    ("bool", "FALSE", False),
    ("bool", "Yes", True),
    ("bool", "no", False),
    ("bool", "1", True),
    ("bool", "0", False),
    ("bool", "y", BAD),
    ("bool", "t", BAD),
    ("bool", " true", BAD),
    ("bool", "", None),
    ("date", "2024-02-29", date(2024, 2, 29)),
    ("date", "2023-02-29", BAD),  # not a real day
    ("date", "2024-1-5", BAD),  # ISO needs two digits
    ("date", "+2024-01-05", BAD),
    ("date", "20240105", BAD),
    ("date", "05/01/2024", BAD),
    ("date", "2024-01-05T00:00:00Z", BAD),
    ("date", "", None),
    ("timestamp", "2024-01-05T10:20:30Z", datetime(2024, 1, 5, 10, 20, 30, tzinfo=UTC)),
    ("timestamp", "2024-01-05 10:20:30Z", datetime(2024, 1, 5, 10, 20, 30, tzinfo=UTC)),
    ("timestamp", "2024-01-05T10:20:30+02:00", datetime(2024, 1, 5, 8, 20, 30, tzinfo=UTC)),
    ("timestamp", "2024-01-05T10:20:30-0130", datetime(2024, 1, 5, 11, 50, 30, tzinfo=UTC)),
    (
        "timestamp",
        "2024-01-05T10:20:30.123456789Z",  # nanoseconds are truncated to microseconds
        datetime(2024, 1, 5, 10, 20, 30, 123456, tzinfo=UTC),
    ),
    ("timestamp", "2024-01-05T10:20:30", BAD),  # no offset: the zone would be a guess
    ("timestamp", "2024-01-05T10:20Z", BAD),
    ("timestamp", "2024-01-05T25:00:00Z", BAD),
    ("timestamp", "2024-01-05T10:20:30+02", BAD),
    ("timestamp", "2024-01-05", BAD),
    ("timestamp", "", None),
    ("string", "  as written ", "  as written "),
    ("string", "", ""),  # empty stays "" in string columns
]


@pytest.mark.parametrize(("kind", "value", "expected"), TYPED_CASES)
def test_values_by_type(kind: Any, value: str, expected: object) -> None:
    # GIVEN a nullable column of the type  WHEN one value is checked
    result = check(Column("v", kind), [value])

    # THEN it is typed, or it is a violation naming the type
    if expected is BAD:
        assert result.valid == [] and result.bad_rows == 1
        assert result.problems == (Problem(2, "v", value, f"not a valid {kind}"),)
    else:
        assert result.problems == () and result.bad_rows == 0
        assert result.valid == [{"v": expected}]


def test_output_types() -> None:
    kinds: list[Any] = ["string", "int", "float", "bool", "date", "timestamp"]
    contract = make(*[Column(k, k) for k in kinds])
    result = convert(contract, {k: [""] for k in kinds})
    assert result.schema == pa.schema(
        [
            ("string", pa.large_string()),
            ("int", pa.int64()),
            ("float", pa.float64()),
            ("bool", pa.bool_()),
            ("date", pa.date32()),
            ("timestamp", pa.timestamp("us", tz="UTC")),
        ]
    )
    assert result.valid == [dict.fromkeys(kinds) | {"string": ""}]


@pytest.mark.parametrize("kind", ["string", "int", "float", "bool", "date", "timestamp"])
def test_not_nullable_rejects_empty_values(kind: Any) -> None:
    result = check(Column("v", kind, nullable=False), [""])
    assert result.problems == (Problem(2, "v", "", "empty value"),)


def test_a_contracts_nulls_are_empty_for_nullable() -> None:
    # GIVEN an int column that is not nullable, NA a null  THEN NA is an empty value there
    result = check(Column("v", "int", nullable=False), ["NA", "1", ""], nulls=("", "NA"))
    assert [(p.row, p.value, p.reason) for p in result.problems] == [
        (2, "NA", "empty value"),
        (4, "", "empty value"),
    ]
    # AND in a string column only the empty field is empty
    result = check(Column("v", nullable=False), ["NA", ""], nulls=("", "NA"))
    assert [(p.row, p.value) for p in result.problems] == [(3, "")]
    assert result.valid == [{"v": "NA"}]


def test_pattern_must_match_the_whole_value() -> None:
    column = Column("v", pattern="ORD-[0-9]{3}")
    result = check(column, ["ORD-123", "ORD-1234", "xORD-123", "ord-123", ""])
    assert [r["v"] for r in result.valid] == ["ORD-123", ""]  # empty: only `nullable` applies
    assert [(p.row, p.value, p.reason) for p in result.problems] == [
        (3, "ORD-1234", "does not match the pattern"),
        (4, "xORD-123", "does not match the pattern"),
        (5, "ord-123", "does not match the pattern"),
    ]


def test_pattern_alternatives_are_anchored_as_a_group() -> None:
    result = check(Column("v", pattern="a|b"), ["a", "b", "ab", "xa", "bx"])
    assert [r["v"] for r in result.valid] == ["a", "b"]


def test_pattern_digits_are_unicode_digits_as_in_rust_regex() -> None:
    # \d is any Unicode digit (Arabic-Indic, fullwidth); [0-9] only ASCII
    values = ["12", "\u0661\u0662", "\uff11\uff12", "1a"]
    assert [r["v"] for r in check(Column("v", pattern=r"\d+"), values).valid] == values[:3]
    assert [r["v"] for r in check(Column("v", pattern="[0-9]+"), values).valid] == ["12"]
    # AND other Rust regex syntax: flags, classes; anchors inside are harmless
    flagged = check(Column("v", pattern="(?i)ab[[:digit:]]"), ["AB1", "ab2", "ab"])
    assert [r["v"] for r in flagged.valid] == ["AB1", "ab2"]
    assert [r["v"] for r in check(Column("v", pattern="^x$"), ["x", "xx"]).valid] == ["x"]


def test_allowed_strings_are_case_sensitive() -> None:
    result = check(Column("v", allowed=("EUR", "USD")), ["EUR", "eur", "", "GBP"])
    assert [r["v"] for r in result.valid] == ["EUR", ""]
    assert [p.value for p in result.problems] == ["eur", "GBP"]
    assert {p.reason for p in result.problems} == {"not an allowed value"}


def test_allowed_ints_compare_the_number() -> None:
    result = check(Column("v", "int", allowed=(1, 2)), ["1", "+2", "02", "3", "x"])
    assert [r["v"] for r in result.valid] == [1, 2, 2]
    assert [(p.value, p.reason) for p in result.problems] == [
        ("3", "not an allowed value"),
        ("x", "not a valid int"),  # one reason per cell: the first failed check
    ]


def test_a_pattern_and_allowed_values_together_name_the_first_that_fails() -> None:
    column = Column("v", pattern="[A-Z]{3}", allowed=("EUR", "USD"))
    result = check(column, ["EUR", "GBP", "eu"])
    assert [(p.value, p.reason) for p in result.problems] == [
        ("GBP", "not an allowed value"),
        ("eu", "does not match the pattern"),
    ]


# --- rows, reports, rejected rows ----------------------------------------------------------
def test_rows_are_file_rows_across_chunks() -> None:
    # GIVEN a file cut into many chunks (a few records each), with blank lines and a quoted
    # newline (rows are records, as a spreadsheet counts them)
    data = b'v,w\n1,a\nx,a\n\n2,"b\nc"\ny,a\n' + b"4,a\n" * 50 + b"z,a\n"
    contract = tolerant(make(Column("v", "int"), Column("w")))
    for chunk_bytes in (1, 5, 64, 4 << 20):
        result = run(contract, data, chunk_bytes)
        # THEN problems and rejected rows carry file row numbers
        assert [p.row for p in result.problems] == [3, 5, 56], chunk_bytes
        assert [r["_row"] for r in result.rejected] == [3, 5, 56]
        assert [r["v"] for r in result.rejected] == ["x", "y", "z"]
        assert (result.bad_rows, len(result.valid)) == (3, 52)
        assert result.valid[1] == {"v": 2, "w": "b\nc"}


def test_problem_values_are_truncated() -> None:
    long = "x" * 500
    result = check(Column("v", "int"), [long])
    (problem,) = result.problems
    assert len(problem.value) == 80 and problem.value == "x" * 79 + "…"
    assert [r["v"] for r in result.rejected] == [long]  # the rejected rows keep the whole value
    assert problem.to_dict() == {
        "row": 2,
        "column": "v",
        "value": problem.value,
        "reason": "not a valid int",
    }


def test_rejected_rows_keep_the_original_values_and_say_why() -> None:
    # GIVEN a file with one good row and a bad one, and a dropped extra column
    contract = make(
        Column("id", "int", nullable=False),
        Column("day", "date"),
        Column("code", pattern="[A-Z]+"),
        extra_columns="drop",
    )
    columns = {
        "id": ["1", "", "3"],
        "extra": ["e1", "e2", "e3"],
        "day": ["2024-01-05", "2024-13-01", "2024-01-07"],
        "code": ["AB", "ab", "C"],
    }

    # WHEN converted
    result = convert(tolerant(contract), columns)

    # THEN the bad row has every file column as written, its row number and a short reason
    assert result.rejected == [
        {
            "id": "",
            "extra": "e2",
            "day": "2024-13-01",
            "code": "ab",
            "_row": 3,
            "_errors": "id: empty value; day: not a valid date; code: does not match the pattern",
        }
    ]
    assert result.valid == [
        {"id": 1, "day": date(2024, 1, 5), "code": "AB"},
        {"id": 3, "day": date(2024, 1, 7), "code": "C"},
    ]
    assert (result.problem_count, result.bad_rows) == (3, 1)


def test_report_is_capped_but_counts_are_exact() -> None:
    contract = make(Column("a", "int"), Column("b", "int"), on_error=OnError(report_limit=3))
    result = convert(tolerant(contract), {"a": ["x"] * 10, "b": ["y"] * 10})
    assert [(p.row, p.column) for p in result.problems] == [(2, "a"), (2, "b"), (3, "a")]
    assert (result.problem_count, result.bad_rows, len(result.rejected)) == (20, 10, 10)
    # a report limit of 0 lists nothing, counts stay exact
    silent = replace(contract, on_error=OnError(report_limit=0))
    result = convert(tolerant(silent), {"a": ["x"] * 10, "b": ["y"] * 10})
    assert (result.problems, result.problem_count) == ((), 20)


def test_a_clean_file() -> None:
    result = check(Column("v", "int"), ["1", "2"])
    assert (result.problems, result.problem_count, result.bad_rows) == ((), 0, 0)
    assert result.rejected == []


def test_columns_are_found_by_name_whatever_their_order() -> None:
    contract = make(Column("id", "int"), Column("name"))
    result = convert(contract, {"name": ["a", "b"], "id": ["1", "2"]})
    assert result.valid == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]


def test_200k_rows_are_checked_quickly() -> None:
    # GIVEN a 200k-row file in which every other row is bad
    n = 200_000
    contract = make(
        Column("id", "int", nullable=False),
        Column("at", "timestamp"),
        Column("code", pattern="[A-Z]{2}[0-9]{4}"),
        Column("ok", "bool"),
    )
    data = csv_bytes(
        ["id", "at", "code", "ok"],
        [
            [str(i), "2024-01-05T10:20:30.5+02:00", "AB1234" if i % 2 else "bad", "yes"]
            for i in range(n)
        ],
    )

    # WHEN converted (both formats)
    sinks = {"jsonl": io.BytesIO().write, "parquet": io.BytesIO().write}
    options = EngineOptions(outputs=("jsonl", "parquet"), typing=ContractTyping(tolerant(contract)))
    started = time.perf_counter()
    result = convert_stream(io.BytesIO(data), options, sinks, rejected_sink=io.BytesIO().write)
    elapsed = time.perf_counter() - started

    # THEN counts are exact, only the capped report was listed, and it took well under the
    # generous bound (about 0.15 s on 2 cores when measured)
    assert (result.rejected_rows, result.problem_count, len(result.problems)) == (
        n // 2,
        n // 2,
        20,
    )
    assert result.rows == n // 2
    assert elapsed < 2.0


# --- the violation message and the error policy --------------------------------------------
def test_violation_message_fits_the_limit() -> None:
    # GIVEN many problems with long values
    problems = [Problem(r, "column", "é" * 200, "not a valid int") for r in range(2, 2000)]

    # WHEN turned into a message  THEN it stays under 16 KiB with exact counts
    message = violation_message("orders", problems, problem_count=5000, bad_rows=1998)
    report = json.loads(message)
    assert len(message.encode()) <= MESSAGE_LIMIT
    assert (report["contract"], report["problemCount"], report["badRows"]) == ("orders", 5000, 1998)
    assert 0 < len(report["problems"]) < len(problems)
    assert report["problems"][0] == problems[0].to_dict()


def test_reject_fails_on_the_first_chunk_with_a_problem() -> None:
    # GIVEN a file cut into one-record chunks, its 3rd and 4th rows bad
    contract = make(Column("v", "int"), Column("w", "int"))
    data = csv_bytes(["v", "w"], [["1", "1"], ["2", "2"], ["x", "y"], ["z", "3"]])
    with pytest.raises(ContractViolation) as excinfo:
        run(contract, data, chunk_bytes=1)
    # THEN the file fails there: that chunk's problems, counted exactly; nothing after it
    report = violation(excinfo)
    assert (report["problemCount"], report["badRows"]) == (2, 1)
    assert [(p["row"], p["column"]) for p in report["problems"]] == [(4, "v"), (4, "w")]
    assert "detail" not in report


def test_drop_rows_fails_past_the_maximum() -> None:
    # GIVEN a contract that tolerates 5 dropped rows, reporting at most 3 problems
    policy = OnError("drop_rows", max_rejected_rows=5, report_limit=3)
    contract = make(Column("v", "int"), on_error=policy)
    rows = [["1"], ["x"], ["x"], ["2"], ["x"], ["x"], ["x"]]

    # WHEN a file has exactly 5 bad rows  THEN it is converted, with counts and 3 problems
    result = run(contract, csv_bytes(["v"], rows), chunk_bytes=3)
    assert (result.bad_rows, result.problem_count, len(result.problems)) == (5, 5, 3)
    assert [r["v"] for r in result.valid] == [1, 2]

    # WHEN one more bad row comes  THEN the file is rejected with totals and the first problems
    with pytest.raises(ContractViolation) as excinfo:
        run(contract, csv_bytes(["v"], [*rows, ["3"], ["y"]]), chunk_bytes=3)
    report = violation(excinfo)
    assert (report["badRows"], report["problemCount"], len(report["problems"])) == (6, 6, 3)
    assert [p["row"] for p in report["problems"]] == [3, 4, 6]
    assert report["detail"] == "more than max_rejected_rows=5 rows rejected"


def test_drop_rows_counts_rows_not_cells() -> None:
    contract = make(
        Column("v", "int"), Column("w", "int"), on_error=OnError("drop_rows", max_rejected_rows=1)
    )
    result = run(contract, csv_bytes(["v", "w"], [["x", "y"], ["1", "2"]]))
    assert (result.bad_rows, result.problem_count) == (1, 2)
    with pytest.raises(ContractViolation) as excinfo:
        run(contract, csv_bytes(["v", "w"], [["x", "y"], ["1", "2"], ["3", "z"]]), chunk_bytes=1)
    assert [p["row"] for p in violation(excinfo)["problems"]] == [2, 2, 4]


def test_a_header_read_with_the_wrong_delimiter_says_so() -> None:
    # GIVEN a comma-delimited file read as tab-delimited: its header is one field
    contract = make(Column("id"), Column("customer"), extra_columns="reject")
    with pytest.raises(ContractViolation) as excinfo:
        contract.plan_header(["id,customer"])
    # THEN every header problem says the header splits on a comma: check the delimiter
    problems = violation(excinfo)["problems"]
    assert problems and all(
        "a comma splits into the contract's columns" in p["reason"] for p in problems
    )
    assert all("check the delimiter" in p["reason"] for p in problems)


def test_a_header_that_is_simply_wrong_gets_no_delimiter_hint() -> None:
    contract = make(Column("id"), extra_columns="reject")
    with pytest.raises(ContractViolation) as excinfo:
        contract.plan_header(["other"])
    assert all("delimiter" not in p["reason"] for p in violation(excinfo)["problems"])


def test_a_contracts_nulls_are_null_in_typed_columns_and_kept_in_string_columns() -> None:
    # GIVEN a contract that reads NA as null (what `chute contract suggest` writes)
    text = column_with('type = "int"', nulls='["", "NA"]')
    text += '\n[[contracts.c.columns]]\nname = "s"\n'
    contract = parse_contracts(text).get("c")
    assert contract.nulls == ("", "NA")
    columns = {"a": ["1", "NA", ""], "s": ["NA", "x", ""]}
    # WHEN a file is converted
    result = convert(contract, columns)
    # THEN NA is null in the int column and kept in the string column
    assert result.problem_count == 0
    assert result.valid == [
        {"a": 1, "s": "NA"},
        {"a": None, "s": "x"},
        {"a": None, "s": ""},
    ]
    # AND without it, NA is not an int (contracts keep their meaning)
    plain = parse_contracts(column_with('type = "int"')).get("c")
    checked = convert(tolerant(plain), {"a": columns["a"]})
    assert [p.reason for p in checked.problems] == ["not a valid int"]


@settings(max_examples=60, deadline=None)
@given(
    floats=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50),
    stamps=st.lists(
        st.datetimes(
            min_value=datetime(1, 1, 2),
            max_value=datetime(9999, 12, 30),
        ),
        min_size=1,
        max_size=50,
    ),
)
def test_json_lines_are_what_polars_writes_for_any_float_and_timestamp(
    floats: list[float], stamps: list[datetime]
) -> None:
    # GIVEN floats written as Python writes them and timestamps with offsets and fractions
    texts = [repr(x) for x in floats]
    at = [
        s.isoformat(sep=" " if s.day % 2 else "T") + ("Z" if s.month % 2 else "-01:30")
        for s in stamps
    ]
    rows = max(len(texts), len(at))
    columns = {
        "f": [texts[i % len(texts)] for i in range(rows)],
        "t": [at[i % len(at)] for i in range(rows)],
    }
    # WHEN converted under a contract  THEN every value is typed (none rejected), and the JSON
    # Lines are byte for byte polars' (``run`` compares them)
    result = convert(make(Column("f", "float"), Column("t", "timestamp")), columns)
    assert [r["f"] for r in result.valid] == [float(v) for v in columns["f"]]


# --- the value rules are polars' (the implementation before the native core), as an oracle ---
_TIMESTAMP_SHAPE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})$"
)


def polars_typed(kind: str, values: list[str]) -> list[object]:
    """What the polars implementation read each (non-empty) value as; None: not valid."""
    raw = pl.Series(values, dtype=pl.String)
    if kind == "int":
        return raw.cast(pl.Int64, strict=False).to_list()
    if kind == "float":
        floats = raw.cast(pl.Float64, strict=False)
        return [x if x is not None and x == x and abs(x) != float("inf") else None for x in floats]
    if kind == "bool":
        words = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
        return [words.get(v.lower()) for v in values]
    if kind == "date":
        days = raw.str.to_date("%Y-%m-%d", strict=False).cast(pl.Int32)
        shaped = raw.str.contains(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
        return [d if ok else None for d, ok in zip(days, shaped, strict=True)]
    micros = raw.str.to_datetime("%+", time_unit="us", time_zone="UTC", strict=False)
    shaped = raw.str.contains(_TIMESTAMP_SHAPE)
    return [m if ok else None for m, ok in zip(micros.cast(pl.Int64), shaped, strict=True)]


def native_typed(kind: str, values: list[str]) -> list[object]:
    """What the native core reads each value as (None: rejected), in the same units."""
    column = Column("v", kind)  # type: ignore[arg-type]
    result = check(column, values)
    bad = {r["_row"] - 2 for r in result.rejected}
    typed = result.table.column("v")
    if kind in ("date", "timestamp"):  # as numbers: Python's dates start at year 1
        typed = typed.cast(pa.int32() if kind == "date" else pa.int64())
    valid = iter(typed.to_pylist())
    return [None if index in bad else next(valid) for index in range(len(values))]


_PIECES = {
    "int": ["0", "1", "7", "9", "00", "+", "-", " ", ".", "e", "_", "9223372036854775807", "x"],
    "float": ["0", "1", "5", ".", "e", "E", "+", "-", "inf", "nan", "1e400", " ", ",", "x", "00"],
    "bool": ["t", "T", "rue", "RUE", "f", "alse", "yes", "YES", "no", "1", "0", "y", " "],
    "date": ["2024", "0000", "9999", "-", "01", "02", "29", "30", "31", "13", "1", "+", "T"],
    "timestamp": [
        "2024-02-29",
        "1969-12-31",
        "T",
        " ",
        "t",
        "23",
        "24",
        "59",
        "60",
        "00",
        ":",
        ".",
        "123456789",
        "1",
        "Z",
        "z",
        "+",
        "-",
        "0130",
        "01:30",
        "24:00",
    ],
}


@settings(max_examples=40, deadline=None)
@given(data=st.data())
@pytest.mark.parametrize("kind", list(_PIECES))
def test_every_value_is_read_as_polars_read_it(kind: str, data: st.DataObject) -> None:
    # GIVEN values made of the pieces a type's values are written with (most invalid, many
    # valid, every edge: signs, zeros, overflow, leap days and seconds, offsets, fractions)
    piece = st.sampled_from(_PIECES[kind])
    longest = 14 if kind == "timestamp" else 6
    values = data.draw(
        st.lists(
            st.lists(piece, min_size=1, max_size=longest).map("".join), min_size=1, max_size=60
        )
    )
    # WHEN checked by the native core  THEN each is valid exactly when polars read it, as the
    # same value (dates in days, timestamps in microseconds since the epoch)
    assert native_typed(kind, values) == polars_typed(kind, values)


@pytest.mark.parametrize("kind", list(_PIECES))
def test_the_oracle_sees_valid_and_invalid_values(kind: str) -> None:
    # The pieces above make both kinds of value (or the comparison would prove little).
    examples = {
        "int": ["+007", "-0", "9223372036854775807", "1_0"],
        "float": ["+.5", "1e400", "00.5e-1", "nan"],
        "bool": ["TRUE", "yes", "0", "y"],
        "date": ["2024-02-29", "0000-01-01", "2024-02-30", "2024-1-01"],
        "timestamp": [
            "2024-02-29T23:59:60Z",
            "2024-02-29 23:59:59.123456789+01:30",
            "1969-12-31T00:00:00-0130",
            "2024-02-29T24:00:00Z",
        ],
    }[kind]
    assert native_typed(kind, examples) == polars_typed(kind, examples)
    assert examples[0] and polars_typed(kind, examples)[0] is not None
    assert polars_typed(kind, examples)[-1] is None
