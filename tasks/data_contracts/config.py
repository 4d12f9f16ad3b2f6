"""Loading and checking the data-contracts file (``contracts/contracts.toml``) into a ContractSet.

The file is parsed with ``tomllib``; every key is checked, unknown keys are errors, and each
``ContractConfigError`` says which file and which key (``file: contracts.x.field: ...``)::

    [settings]
    unmatched = "infer"             # a file matching no contract: "infer" (the default) types
                                    # its columns by inference, "text" keeps every value a
                                    # string, "reject" quarantines it.

    [contracts.orders]              # name: letters, digits, "_" and "-"
    match = { prefixes = ["partners/acme/"], suffixes = [".csv", ".csv.gz"] }
    dialect = { delimiter = ",", quote = '"' }   # optional; delimiter "," "\t" "|" ";"
                                                 # (absent = sniff it); quote '"' (default) or "'"
    outputs = ["jsonl", "parquet"]               # at least one, no repeats
    extra_columns = "drop"          # "reject" (default) | "drop" | "keep" (kept as strings, last)
    missing_columns = "null"        # "reject" (default) | "null": absent optional columns are null
    on_error = { policy = "drop_rows", max_rejected_rows = 100, report_limit = 20 }
    nulls = ["", "NA"]              # values that are null in typed columns (default [""]);
                                    # string columns keep every value as written

    [[contracts.orders.columns]]    # at least one; output order = this order
    name = "order_id"
    type = "string"                 # string | int | float | bool | date | timestamp
    required = true                 # must be in the header (default true)
    nullable = false                # empty value allowed? (default true)
    pattern = "ORD-[0-9]{8}"        # string columns only; must match the WHOLE value
    allowed = ["EUR", "USD"]        # string (strings) or int (integers) columns only

Rules of the model (matching, headers) are in ``model``; value rules are in ``check``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final, cast

from tasks.data_contracts.model import (
    COLUMN_TYPES,
    DEFAULT_REPORT_LIMIT,
    QUOTES,
    RESERVED_COLUMNS,
    Column,
    ColumnType,
    Contract,
    ContractConfigError,
    ContractSet,
    Dialect,
    ErrorPolicy,
    ExtraColumns,
    Match,
    MissingColumns,
    OnError,
    Unmatched,
)
from tasks.formats import DELIMITERS, OUTPUT_FORMATS, Delimiter, OutputFormat

__all__ = ["ContractConfigError", "load_contracts", "parse_contracts"]

UNMATCHED: Final = ("infer", "text", "reject")
_NAME: Final = re.compile(r"[A-Za-z0-9_-]+")


def load_contracts(path: Path, *, compile_patterns: bool = True) -> ContractSet:
    """Read and check a contracts file; ContractConfigError says what is wrong and where.

    ``compile_patterns=False`` checks everything but whether each ``pattern`` compiles (with
    the native core, which runs them): Validate, which only plans headers, loads the file so;
    Convert and Batch load it with the check."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractConfigError(f"{path}: can't read the contracts file: {exc}") from exc
    return parse_contracts(text, source=str(path), compile_patterns=compile_patterns)


def parse_contracts(
    text: str, source: str = "<contracts>", *, compile_patterns: bool = True
) -> ContractSet:
    """The same as ``load_contracts`` for a file's text (e.g. read from S3)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ContractConfigError(f"{source}: not valid TOML: {exc}") from exc
    root = _Table(data, source, "")
    root.only({"settings", "contracts"})
    settings = root.table("settings", required=False)
    settings.only({"unmatched"})
    unmatched = cast(Unmatched, settings.choice("unmatched", UNMATCHED, default="infer"))
    contracts = root.table("contracts", required=False)
    parsed = tuple(
        _contract(contracts.table(name, True), name, compile_patterns) for name in contracts.data
    )
    return ContractSet(contracts=parsed, unmatched=unmatched, source=source)


_CONTRACT_KEYS: Final = frozenset(
    {
        "match",
        "dialect",
        "outputs",
        "extra_columns",
        "missing_columns",
        "on_error",
        "nulls",
        "columns",
    }
)
_COLUMN_KEYS: Final = frozenset({"name", "type", "required", "nullable", "pattern", "allowed"})


def _contract(table: _Table, name: str, compile_patterns: bool) -> Contract:
    if not _NAME.fullmatch(name):
        raise table.error("", "contract names use letters, digits, '_' and '-' only")
    table.only(_CONTRACT_KEYS)
    outputs = table.strings("outputs", required=True)
    if not outputs:
        raise table.error("outputs", "list at least one output format")
    for output in outputs:
        if output not in OUTPUT_FORMATS:
            raise table.error(
                "outputs", f"unknown format {output!r}; use {_options(OUTPUT_FORMATS)}"
            )
    if len(set(outputs)) != len(outputs):
        raise table.error("outputs", "a format is listed twice")
    contract = Contract(
        name=name,
        match=_match(table.table("match", required=True)),
        columns=_columns(table, compile_patterns),
        dialect=_dialect(table.table("dialect", required=False)),
        outputs=cast(tuple[OutputFormat, ...], outputs),
        extra_columns=cast(
            ExtraColumns, table.choice("extra_columns", ("reject", "drop", "keep"), "reject")
        ),
        missing_columns=cast(
            MissingColumns, table.choice("missing_columns", ("reject", "null"), "reject")
        ),
        on_error=_on_error(table.table("on_error", required=False)),
        nulls=table.strings("nulls", required=False) or ("",),
    )
    _check_optional_columns(table, contract)
    return contract


def _match(table: _Table) -> Match:
    table.only({"prefixes", "suffixes"})
    prefixes = table.strings("prefixes", required=False)
    suffixes = table.strings("suffixes", required=False)
    if not prefixes and not suffixes:
        raise table.error("", "give prefixes, suffixes or both (a non-empty list)")
    for key, values in (("prefixes", prefixes), ("suffixes", suffixes)):
        if any(not v for v in values):
            raise table.error(key, "empty strings match every key; remove them")
    return Match(prefixes=prefixes, suffixes=suffixes)


def _dialect(table: _Table) -> Dialect:
    table.only({"delimiter", "quote"})
    delimiter = cast(Delimiter | None, table.optional_choice("delimiter", DELIMITERS))
    return Dialect(delimiter=delimiter, quote=table.choice("quote", QUOTES, '"'))


def _on_error(table: _Table) -> OnError:
    table.only({"policy", "max_rejected_rows", "report_limit"})
    policy = cast(ErrorPolicy, table.choice("policy", ("reject", "drop_rows"), "reject"))
    report_limit = table.integer("report_limit", DEFAULT_REPORT_LIMIT, minimum=0)
    has_max = "max_rejected_rows" in table.data
    if policy == "reject" and has_max:
        raise table.error("max_rejected_rows", 'only applies to policy = "drop_rows"')
    if policy == "drop_rows" and not has_max:
        raise table.error("max_rejected_rows", 'required with policy = "drop_rows"')
    max_rejected = table.integer("max_rejected_rows", 0, minimum=0)
    return OnError(policy=policy, max_rejected_rows=max_rejected, report_limit=report_limit)


def _columns(contract: _Table, compile_patterns: bool) -> tuple[Column, ...]:
    entries = contract.data.get("columns")
    if not isinstance(entries, list) or not entries:
        raise contract.error("columns", "define at least one [[contracts.<name>.columns]] entry")
    columns: list[Column] = []
    for index, entry in enumerate(entries):
        table = contract.child(entry, f"columns[{index}]")
        column = _column(table, compile_patterns)
        if any(c.name == column.name for c in columns):
            raise table.error("name", f"duplicate column {column.name!r}")
        columns.append(column)
    return tuple(columns)


def _column(table: _Table, compile_patterns: bool) -> Column:
    table.only(_COLUMN_KEYS)
    name = table.string("name", required=True)
    assert name is not None  # required
    if not name:
        raise table.error("name", "must not be empty")
    if name in RESERVED_COLUMNS:
        raise table.error("name", f"{name!r} is reserved for the rejected-rows report")
    table = table.renamed(f"columns.{name}")
    kind = cast(ColumnType, table.choice("type", COLUMN_TYPES, "string"))
    pattern = table.string("pattern", required=False)
    if pattern is not None:
        _check_pattern(table, kind, pattern, compile_patterns)
    return Column(
        name=name,
        type=kind,
        required=table.boolean("required", True),
        nullable=table.boolean("nullable", True),
        pattern=pattern,
        allowed=_allowed(table, kind),
    )


def _check_pattern(table: _Table, kind: ColumnType, pattern: str, compile_it: bool) -> None:
    if kind != "string":
        raise table.error("pattern", f"only string columns take a pattern (this one is {kind})")
    if not compile_it:
        return
    # Compiled by the engine that will run it: the native core's Rust regex, not Python's re.
    import chute_native

    error = chute_native.pattern_error(pattern)
    if error is not None:
        raise table.error("pattern", f"invalid regex: {error}")


def _allowed(table: _Table, kind: ColumnType) -> tuple[str, ...] | tuple[int, ...] | None:
    if "allowed" not in table.data:
        return None
    values = table.data["allowed"]
    if kind not in ("string", "int"):
        raise table.error("allowed", f"only string and int columns take allowed values ({kind})")
    want: type = str if kind == "string" else int
    if (
        not isinstance(values, list)
        or not values
        or any(type(v) is not want for v in values)  # bool is an int subclass: exact type
    ):
        raise table.error("allowed", f"expected a non-empty list of {want.__name__} values")
    if len(set(values)) != len(values):
        raise table.error("allowed", "a value is listed twice")
    if kind == "int" and any(not -(2**63) <= v < 2**63 for v in values):
        raise table.error("allowed", "values must fit in 64 bits")
    return tuple(values)


def _check_optional_columns(table: _Table, contract: Contract) -> None:
    optional = [c for c in contract.columns if not c.required]
    if contract.missing_columns == "reject" and optional:
        raise table.error(
            f"columns.{optional[0].name}.required",
            'required = false needs missing_columns = "null" (else a missing column is rejected)',
        )
    if contract.missing_columns == "null" and not optional:
        raise table.error(
            "missing_columns",
            '"null" applies to optional columns only, and every column is required '
            "(mark some with required = false, or remove it)",
        )
    for column in optional:
        if not column.nullable:
            raise table.error(
                f"columns.{column.name}.nullable",
                "an optional column can't be nullable = false (when absent it is all null)",
            )


def _options(values: Iterable[str]) -> str:
    return ", ".join(repr(v) for v in values)


class _Table:
    """One TOML table and where it is, for precise errors (``file: contracts.x.field: ...``)."""

    def __init__(self, data: Any, source: str, where: str) -> None:
        self.source = source
        self.where = where
        if not isinstance(data, dict):
            raise self.error("", f"expected a table, got {_toml_type(data)}")
        self.data: dict[str, Any] = data

    def error(self, key: str, message: str) -> ContractConfigError:
        field = ".".join(p for p in (self.where, key) if p) or "(top level)"
        return ContractConfigError(f"{self.source}: {field}: {message}")

    def child(self, data: Any, key: str) -> _Table:
        return _Table(data, self.source, ".".join(p for p in (self.where, key) if p))

    def renamed(self, key: str) -> _Table:
        """The same table, located by a better name (a column by its name, not its index)."""
        parent = self.where.rsplit(".", 1)[0]
        return _Table(self.data, self.source, f"{parent}.{key}")

    def only(self, allowed: Iterable[str]) -> None:
        unknown = sorted(set(self.data) - set(allowed))
        if unknown:
            raise self.error(
                unknown[0], f"unknown key; expected one of {_options(sorted(allowed))}"
            )

    def table(self, key: str, required: bool) -> _Table:
        if key not in self.data:
            if required:
                raise self.error(key, "missing")
            return self.child({}, key)
        return self.child(self.data[key], key)

    def string(self, key: str, required: bool) -> str | None:
        if key not in self.data:
            if required:
                raise self.error(key, "missing")
            return None
        value = self.data[key]
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {_toml_type(value)}")
        return value

    def choice(self, key: str, options: Sequence[str], default: str | None = None) -> str:
        """One of ``options``; absent: ``default``, or an error when there is none."""
        value = self.optional_choice(key, options)
        if value is not None:
            return value
        if default is None:
            raise self.error(key, f"missing; expected one of {_options(options)}")
        return default

    def optional_choice(self, key: str, options: Sequence[str]) -> str | None:
        value = self.string(key, required=False)
        if value is not None and value not in options:
            raise self.error(key, f"expected one of {_options(options)}, got {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_toml_type(value)}")
        return value

    def integer(self, key: str, default: int, minimum: int) -> int:
        value = self.data.get(key, default)
        if type(value) is not int:
            raise self.error(key, f"expected an integer, got {_toml_type(value)}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def strings(self, key: str, required: bool) -> tuple[str, ...]:
        if key not in self.data:
            if required:
                raise self.error(key, "missing")
            return ()
        value = self.data[key]
        if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of strings, got {_toml_type(value)}")
        return tuple(value)


def _toml_type(value: object) -> str:
    names: dict[type, str] = {bool: "a boolean", int: "an integer", float: "a float"}
    names |= {str: "a string", list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)
