"""Data contracts: which files must have which columns, types and values, and what to do when not.

Pure domain: a TOML file (``contracts/contracts.toml``) is parsed into frozen dataclasses, and the
conversion engine asks a ``Contract`` to plan a file's header and to validate each chunk of rows.
Nothing here does I/O except ``load_contracts`` reading the one file it is given.

The config file (parsed with ``tomllib``; every key is checked, unknown keys are errors)::

    [settings]
    unmatched = "text"              # required. "text": a file matching no contract is converted
                                    # as text, as before; "reject": it is quarantined.

    [contracts.orders]              # name: letters, digits, "_" and "-"
    match = { prefixes = ["partners/acme/"], suffixes = [".csv", ".csv.gz"] }
    dialect = { delimiter = ",", quote = '"' }   # optional; delimiter "," "\t" "|" ";"
                                                 # (absent = sniff it); quote '"' (default) or "'"
    outputs = ["jsonl", "parquet"]               # at least one, no repeats
    extra_columns = "drop"          # "reject" (default) | "drop" | "keep" (kept as strings, last)
    missing_columns = "null"        # "reject" (default) | "null": absent optional columns are null
    on_error = { policy = "drop_rows", max_rejected_rows = 100, report_limit = 20 }

    [[contracts.orders.columns]]    # at least one; output order = this order
    name = "order_id"
    type = "string"                 # string | int | float | bool | date | timestamp
    required = true                 # must be in the header (default true)
    nullable = false                # empty value allowed? (default true)
    pattern = "ORD-[0-9]{8}"        # string columns only; must match the WHOLE value
    allowed = ["EUR", "USD"]        # string (strings) or int (integers) columns only

Matching: a key matches a contract when it starts with one of ``prefixes`` (case-sensitive, as S3
keys are) if any are given, AND ends with one of ``suffixes`` (case-insensitive) if any are given;
at least one of the two lists is required. Contracts are tried in file order (the order in which
their ``[contracts.<name>]`` tables first appear) and the first match wins; overlaps are allowed.

Header rules (``Contract.plan_header``; header names are compared exactly, case-sensitive):
- a column with ``required = true`` missing from the header is a violation;
- ``required = false`` is only valid with ``missing_columns = "null"`` (and vice versa: "null"
  needs at least one optional column): an absent optional column becomes an all-null column;
  an optional column can't be ``nullable = false`` (absent, it would be all null);
- extra columns: "reject" is a violation, "drop" leaves them out, "keep" appends them as strings;
- duplicate header names and the reserved names ``_row``/``_errors`` are always violations.

Value rules (``validate_chunk``), on the strings exactly as in the file -- surrounding spaces are
NOT trimmed, so ``" 5"`` is not a valid int:
- empty field: null in typed columns; ``""`` stays ``""`` in string columns. With
  ``nullable = false`` an empty field is a violation (whatever the type). Pattern and allowed
  values are checked on non-empty fields only.
- int: optional ``+``/``-`` then decimal digits, fitting in Int64 (no ``1_000``, ``1.0``, ``1e3``).
- float: decimal or exponent notation (``1.5``, ``-3e2``, ``.5``), finite only: ``NaN``, ``inf``
  and overflow (``1e400``) are violations (JSON can't carry them). Decimal point only, no ``1,5``.
- bool: ``true/false``, ``1/0``, ``yes/no``, any letter case.
- date: ``YYYY-MM-DD`` exactly (ISO 8601 calendar date, a real day).
- timestamp: ``YYYY-MM-DDTHH:MM:SS[.fraction]`` (``T`` or one space), then ``Z`` or an offset
  ``±HH:MM``/``±HHMM``. A timestamp without offset is a violation (its zone would be a guess).
  Stored as UTC with microseconds (extra fraction digits are truncated).
- pattern: a regex in polars' (Rust ``regex``) syntax -- no look-around or backreferences, and
  ``\\d`` matches any Unicode digit (write ``[0-9]`` for ASCII). It is anchored for you as
  ``^(?:pattern)$``: it must match the whole value.

Error policy (``ErrorBudget``): "reject" fails the file on the first problem; "drop_rows" writes
the valid rows, leaves the bad ones out (``ChunkResult.rejected`` holds them for a report) and
fails the file once more than ``max_rejected_rows`` rows were dropped. ``report_limit`` caps how
many problems are listed (counts are always exact).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, cast

import polars as pl
import polars.exceptions as plx

from tasks.errors import ContractViolation

ColumnType = Literal["string", "int", "float", "bool", "date", "timestamp"]
OutputFormat = Literal["jsonl", "parquet"]
Delimiter = Literal[",", "\t", "|", ";"]
ExtraColumns = Literal["reject", "drop", "keep"]
MissingColumns = Literal["reject", "null"]
ErrorPolicy = Literal["reject", "drop_rows"]
Unmatched = Literal["text", "reject"]

COLUMN_TYPES: Final[tuple[ColumnType, ...]] = (
    "string",
    "int",
    "float",
    "bool",
    "date",
    "timestamp",
)
OUTPUT_FORMATS: Final[tuple[OutputFormat, ...]] = ("jsonl", "parquet")
DELIMITERS: Final[tuple[Delimiter, ...]] = (",", "\t", "|", ";")
QUOTES: Final = ('"', "'")

HEADER_ROW: Final = 1
"""File row number of the header; the first data row is 2."""
ROW_COLUMN: Final = "_row"
ERRORS_COLUMN: Final = "_errors"
RESERVED_COLUMNS: Final = frozenset({ROW_COLUMN, ERRORS_COLUMN})
DEFAULT_REPORT_LIMIT: Final = 20
VALUE_LIMIT: Final = 80
"""Problem values (and column names) longer than this are cut, ending with an ellipsis."""
MESSAGE_LIMIT: Final = 16 * 1024
"""Upper bound, in UTF-8 bytes, of a ContractViolation message (it travels in the workflow)."""

DTYPES: Final[Mapping[ColumnType, pl.DataType]] = {
    "string": pl.String(),
    "int": pl.Int64(),
    "float": pl.Float64(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
    "timestamp": pl.Datetime("us", "UTC"),
}
_BOOLS: Final = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
_DATE_SHAPE: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP_SHAPE: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"  # date, T or space, time
    r"(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})$"  # fraction, then Z or an offset
)
_BAD: Final = "\x00bad"  # internal column names start with NUL: no header collides
_NAME: Final = re.compile(r"[A-Za-z0-9_-]+")
_ELLIPSIS: Final = "…"


class ContractConfigError(ValueError):
    """The contracts file is wrong (a deployment problem, not a file's): the message says where."""


# --- the model ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()

    def matches(self, key: str) -> bool:
        """Prefix (case-sensitive) AND suffix (case-insensitive); an absent list always passes."""
        lowered = key.lower()
        by_prefix = not self.prefixes or any(key.startswith(p) for p in self.prefixes)
        by_suffix = not self.suffixes or any(lowered.endswith(s.lower()) for s in self.suffixes)
        return by_prefix and by_suffix


@dataclass(frozen=True)
class Dialect:
    delimiter: Delimiter | None = None
    """None: the engine sniffs it."""
    quote: str = '"'


@dataclass(frozen=True)
class OnError:
    policy: ErrorPolicy = "reject"
    max_rejected_rows: int = 0
    """Only meaningful for "drop_rows": more dropped rows than this fail the file."""
    report_limit: int = DEFAULT_REPORT_LIMIT


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = "string"
    required: bool = True
    nullable: bool = True
    pattern: str | None = None
    """As written in the config; matched against the whole value (see ``anchored_pattern``)."""
    allowed: tuple[str, ...] | tuple[int, ...] | None = None

    @property
    def dtype(self) -> pl.DataType:
        return DTYPES[self.type]

    @property
    def anchored_pattern(self) -> str | None:
        return None if self.pattern is None else f"^(?:{self.pattern})$"


@dataclass(frozen=True)
class Problem:
    """One thing wrong: at a file row (1 = the header), in a column, with the offending value."""

    row: int
    column: str
    value: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", clip(self.value))
        object.__setattr__(self, "column", clip(self.column))

    def to_dict(self) -> dict[str, int | str]:
        return {"row": self.row, "column": self.column, "value": self.value, "reason": self.reason}


@dataclass(frozen=True)
class HeaderPlan:
    """How a file's header maps onto its contract (built by ``Contract.plan_header``)."""

    header: tuple[str, ...]
    """The file's column names, in file order: the columns every chunk must have."""
    present: tuple[str, ...]
    """Contract columns found in the header (validated and typed)."""
    missing: tuple[str, ...]
    """Optional contract columns absent from the header: output as all-null columns."""
    kept: tuple[str, ...]
    """Extra columns kept as strings (extra_columns = "keep")."""
    dropped: tuple[str, ...]
    """Extra columns left out of the output (extra_columns = "drop")."""
    output_columns: tuple[str, ...]
    """Contract columns in contract order, then the kept extras in file order."""


@dataclass(frozen=True)
class ChunkResult:
    valid: pl.DataFrame
    """The good rows, typed per the contract, in ``HeaderPlan.output_columns`` order."""
    rejected: pl.DataFrame
    """The bad rows: every file column as written, then ``_row`` (Int64), ``_errors`` (String)."""
    problems: tuple[Problem, ...]
    """The first problems in row order, then column (contract) order; at most the report limit."""
    problem_count: int
    """Exact number of bad cells in the chunk."""
    bad_rows: int
    """Exact number of rows with at least one bad cell."""


@dataclass(frozen=True)
class Contract:
    name: str
    match: Match
    columns: tuple[Column, ...]
    dialect: Dialect = Dialect()
    outputs: tuple[OutputFormat, ...] = ("jsonl",)
    extra_columns: ExtraColumns = "reject"
    missing_columns: MissingColumns = "reject"
    on_error: OnError = OnError()

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def plan_header(self, header: Sequence[str]) -> HeaderPlan:
        """Check the header (file row 1) against the contract, or raise ContractViolation."""
        problems = _header_problems(self, header)
        if problems:
            raise ContractViolation(violation_message(self.name, problems, len(problems), 0))
        seen = set(header)
        names = [c.name for c in self.columns]
        known = set(names)
        extras = tuple(h for h in header if h not in known)
        kept = extras if self.extra_columns == "keep" else ()
        return HeaderPlan(
            header=tuple(header),
            present=tuple(n for n in names if n in seen),
            missing=tuple(n for n in names if n not in seen),
            kept=kept,
            dropped=() if kept else extras,
            output_columns=(*names, *kept),
        )

    def output_schema(self, plan: HeaderPlan) -> pl.Schema:
        """The schema of ``ChunkResult.valid`` for this plan (e.g. for an empty output file)."""
        schema = {c.name: c.dtype for c in self.columns}
        return pl.Schema([(name, schema.get(name, pl.String())) for name in plan.output_columns])


@dataclass(frozen=True)
class ContractSet:
    contracts: tuple[Contract, ...]
    unmatched: Unmatched
    source: str = "<contracts>"

    def match(self, key: str) -> Contract | None:
        """The first contract, in file order, whose match rule accepts the key; None if none."""
        return next((c for c in self.contracts if c.match.matches(key)), None)

    def get(self, name: str) -> Contract:
        for contract in self.contracts:
            if contract.name == name:
                return contract
        known = ", ".join(repr(c.name) for c in self.contracts) or "none"
        raise ContractConfigError(f"{self.source}: no contract named {name!r} (known: {known})")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.contracts)


# --- problems and the violation message -----------------------------------------------------
def clip(text: str, limit: int = VALUE_LIMIT) -> str:
    """``text`` if short enough, else its start and an ellipsis, ``limit`` characters in all."""
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


def violation_message(
    contract_name: str,
    problems: Iterable[Problem],
    problem_count: int,
    bad_rows: int,
    *,
    detail: str | None = None,
) -> str:
    """Compact JSON for ContractViolation: counts are exact, the problem list is cut to fit
    ``MESSAGE_LIMIT`` bytes. ``badRows`` counts data rows (a header problem has 0)."""
    head: dict[str, Any] = {
        "contract": contract_name,
        "problemCount": problem_count,
        "badRows": bad_rows,
    }
    if detail is not None:
        head["detail"] = clip(detail, 400)
    budget = MESSAGE_LIMIT - _size(json.dumps({**head, "problems": []}, ensure_ascii=False))
    listed: list[dict[str, int | str]] = []
    for problem in problems:
        item = problem.to_dict()
        cost = _size(json.dumps(item, ensure_ascii=False)) + 1  # + the separating comma
        if cost > budget:
            break
        budget -= cost
        listed.append(item)
    return json.dumps({**head, "problems": listed}, ensure_ascii=False, separators=(",", ":"))


def _size(text: str) -> int:
    return len(text.encode())


def _header_problems(contract: Contract, header: Sequence[str]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(Problem(HEADER_ROW, name, name, "duplicate column in the header"))
        elif name in RESERVED_COLUMNS:
            problems.append(Problem(HEADER_ROW, name, name, "reserved column name"))
        seen.add(name)
    for column in contract.columns:
        if column.required and column.name not in seen:
            problems.append(Problem(HEADER_ROW, column.name, "", "required column missing"))
    if contract.extra_columns == "reject":
        known = {c.name for c in contract.columns} | RESERVED_COLUMNS
        problems.extend(
            Problem(HEADER_ROW, name, name, "column not in the contract")
            for name in dict.fromkeys(header)
            if name not in known
        )
    return problems


# --- validating a chunk (vectorised) --------------------------------------------------------
def validate_chunk(
    contract: Contract,
    plan: HeaderPlan,
    chunk: pl.DataFrame,
    first_row: int,
    report_limit: int | None = None,
) -> ChunkResult:
    """Type and check one chunk. ``chunk``: every file column as String (empty fields ``""``),
    named by the header; ``first_row``: the file row number of its first data row (>= 2).
    ``report_limit`` (default: the contract's) caps ``problems``, not the counts."""
    _check_chunk(plan, chunk)
    limit = contract.on_error.report_limit if report_limit is None else report_limit
    frame, checked = _checked(contract, plan, chunk, first_row)
    bad_rows = int(frame.get_column(_BAD).sum())
    per_column = frame.select(pl.col(_reason_name(n)).is_not_null().sum() for n in checked)
    problem_count = sum(int(v) for v in per_column.row(0)) if checked else 0
    valid = frame.filter(~pl.col(_BAD)).select(_output_exprs(contract, plan))
    bad = frame.filter(pl.col(_BAD))
    errors = _errors_text(checked).alias(ERRORS_COLUMN)
    rejected = bad.select(*plan.header, ROW_COLUMN, errors)
    problems = _first_problems(bad, checked, limit)
    return ChunkResult(valid, rejected, problems, problem_count, bad_rows)


def _checked(
    contract: Contract, plan: HeaderPlan, chunk: pl.DataFrame, first_row: int
) -> tuple[pl.DataFrame, list[str]]:
    """The chunk plus its file row numbers, typed values, one reason column per checked column
    (null = fine) and the row's bad flag; and the names of the checked columns."""
    columns = [contract.column(name) for name in plan.present]
    reasons = {c.name: expr for c in columns if (expr := _reason(c)) is not None}
    frame = chunk.with_row_index(ROW_COLUMN).with_columns(
        (pl.col(ROW_COLUMN).cast(pl.Int64) + first_row).alias(ROW_COLUMN),
        *[_typed(c).alias(_typed_name(c.name)) for c in columns],
    )
    frame = frame.with_columns(
        *[expr.alias(_reason_name(name)) for name, expr in reasons.items()]
    ).with_columns(_any_bad(list(reasons)).alias(_BAD))
    return frame, list(reasons)


def _typed_name(name: str) -> str:
    return f"\x00typed\x00{name}"


def _reason_name(name: str) -> str:
    return f"\x00reason\x00{name}"


def _check_chunk(plan: HeaderPlan, chunk: pl.DataFrame) -> None:
    if tuple(chunk.columns) != plan.header:
        raise ValueError(f"chunk columns {chunk.columns} are not the planned header {plan.header}")
    wrong = [name for name, dtype in chunk.schema.items() if dtype != pl.String]
    if wrong:
        raise ValueError(f"chunk columns must be String, not: {wrong}")


def _raw(name: str) -> pl.Expr:
    """The field as written; a null (a short row, if a reader makes one) counts as empty."""
    return pl.col(name).fill_null("")


def _typed(column: Column) -> pl.Expr:
    """The typed value: null where the field is empty or doesn't parse (strings: as written)."""
    raw = _raw(column.name)
    if column.type == "string":
        return raw
    if column.type == "int":
        return raw.cast(pl.Int64, strict=False)
    if column.type == "float":
        value = raw.cast(pl.Float64, strict=False)
        return pl.when(value.is_finite()).then(value)
    if column.type == "bool":
        return raw.str.to_lowercase().replace_strict(_BOOLS, default=None, return_dtype=pl.Boolean)
    if column.type == "date":
        parsed = raw.str.to_date("%Y-%m-%d", strict=False)
        return pl.when(raw.str.contains(_DATE_SHAPE)).then(parsed)
    parsed = raw.str.to_datetime("%+", time_unit="us", time_zone="UTC", strict=False)
    return pl.when(raw.str.contains(_TIMESTAMP_SHAPE)).then(parsed)


def _reason(column: Column) -> pl.Expr | None:
    """Why a cell is bad (the first failed check), null when fine; None when nothing to check."""
    raw = _raw(column.name)
    empty = raw == ""
    typed = pl.col(_typed_name(column.name))
    checks: list[tuple[pl.Expr, str]] = []
    if not column.nullable:
        checks.append((empty, "empty value"))
    if column.type != "string":
        checks.append((~empty & typed.is_null(), f"not a valid {column.type}"))
    if column.anchored_pattern is not None:
        matched = raw.str.contains(column.anchored_pattern)
        checks.append((~empty & ~matched, "does not match the pattern"))
    if column.allowed is not None:
        known = typed.is_in(pl.Series(list(column.allowed), dtype=column.dtype).implode())
        checks.append((~empty & typed.is_not_null() & ~known, "not an allowed value"))
    if not checks:
        return None
    result = pl.lit(None, pl.String)
    for condition, reason in reversed(checks):  # the first check listed wins
        result = pl.when(condition).then(pl.lit(reason)).otherwise(result)
    return result


def _any_bad(names: list[str]) -> pl.Expr:
    if not names:
        return pl.lit(False)
    return pl.any_horizontal(*[pl.col(_reason_name(n)).is_not_null() for n in names])


def _output_exprs(contract: Contract, plan: HeaderPlan) -> list[pl.Expr]:
    present = set(plan.present)
    exprs: list[pl.Expr] = []
    for column in contract.columns:
        if column.name in present:
            exprs.append(pl.col(_typed_name(column.name)).cast(column.dtype).alias(column.name))
        else:
            exprs.append(pl.lit(None, column.dtype).alias(column.name))
    exprs.extend(pl.col(name) for name in plan.kept)
    return exprs


def _errors_text(names: list[str]) -> pl.Expr:
    """``"amount: not a valid int; email: does not match the pattern"``."""
    if not names:
        return pl.lit("", pl.String)
    parts = [
        pl.when(pl.col(_reason_name(n)).is_not_null()).then(
            pl.concat_str(pl.lit(f"{n}: "), pl.col(_reason_name(n)))
        )
        for n in names
    ]
    return pl.concat_str(parts, separator="; ", ignore_nulls=True)


def _first_problems(bad: pl.DataFrame, names: list[str], limit: int) -> tuple[Problem, ...]:
    """The first ``limit`` problems; each bad row has one at least, so ``limit`` rows suffice."""
    if limit <= 0 or not names:
        return ()
    head = bad.head(limit).select(
        ROW_COLUMN,
        *[_raw(n).alias(f"v{i}") for i, n in enumerate(names)],
        *[pl.col(_reason_name(n)).alias(f"r{i}") for i, n in enumerate(names)],
    )
    problems: list[Problem] = []
    for row in head.iter_rows():  # at most ``limit`` rows: the capped report, not the data
        values, why = row[1 : 1 + len(names)], row[1 + len(names) :]
        for name, value, reason in zip(names, values, why, strict=True):
            if reason is not None:
                problems.append(Problem(row[0], name, value, reason))
    return tuple(problems[:limit])


# --- the error budget across chunks ---------------------------------------------------------
class ErrorBudget:
    """Counts problems over a file's chunks and raises ContractViolation when the policy says so."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.problem_count = 0
        self.bad_rows = 0
        self._problems: list[Problem] = []

    @property
    def problems(self) -> tuple[Problem, ...]:
        """The first ``report_limit`` problems seen, in file order."""
        return tuple(self._problems)

    def add(self, result: ChunkResult) -> None:
        self.problem_count += result.problem_count
        self.bad_rows += result.bad_rows
        room = self.contract.on_error.report_limit - len(self._problems)
        self._problems.extend(result.problems[: max(room, 0)])
        policy = self.contract.on_error
        if policy.policy == "reject" and self.problem_count > 0:
            raise ContractViolation(self.message())
        if policy.policy == "drop_rows" and self.bad_rows > policy.max_rejected_rows:
            detail = f"more than max_rejected_rows={policy.max_rejected_rows} rows rejected"
            raise ContractViolation(self.message(detail=detail))

    def message(self, *, detail: str | None = None) -> str:
        return violation_message(
            self.contract.name, self._problems, self.problem_count, self.bad_rows, detail=detail
        )


# --- loading the config file ----------------------------------------------------------------
def load_contracts(path: Path) -> ContractSet:
    """Read and check a contracts file; ContractConfigError says what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractConfigError(f"{path}: can't read the contracts file: {exc}") from exc
    return parse_contracts(text, source=str(path))


def parse_contracts(text: str, source: str = "<contracts>") -> ContractSet:
    """The same as ``load_contracts`` for a file's text (e.g. read from S3)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ContractConfigError(f"{source}: not valid TOML: {exc}") from exc
    root = _Table(data, source, "")
    root.only({"settings", "contracts"})
    settings = root.table("settings", required=True)
    settings.only({"unmatched"})
    unmatched = cast(Unmatched, settings.choice("unmatched", ("text", "reject")))
    contracts = root.table("contracts", required=False)
    parsed = tuple(_contract(contracts.table(name, True), name) for name in contracts.data)
    return ContractSet(contracts=parsed, unmatched=unmatched, source=source)


_CONTRACT_KEYS: Final = frozenset(
    {"match", "dialect", "outputs", "extra_columns", "missing_columns", "on_error", "columns"}
)
_COLUMN_KEYS: Final = frozenset({"name", "type", "required", "nullable", "pattern", "allowed"})


def _contract(table: _Table, name: str) -> Contract:
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
        columns=_columns(table),
        dialect=_dialect(table.table("dialect", required=False)),
        outputs=cast(tuple[OutputFormat, ...], outputs),
        extra_columns=cast(
            ExtraColumns, table.choice("extra_columns", ("reject", "drop", "keep"), "reject")
        ),
        missing_columns=cast(
            MissingColumns, table.choice("missing_columns", ("reject", "null"), "reject")
        ),
        on_error=_on_error(table.table("on_error", required=False)),
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


def _columns(contract: _Table) -> tuple[Column, ...]:
    entries = contract.data.get("columns")
    if not isinstance(entries, list) or not entries:
        raise contract.error("columns", "define at least one [[contracts.<name>.columns]] entry")
    columns: list[Column] = []
    for index, entry in enumerate(entries):
        table = contract.child(entry, f"columns[{index}]")
        column = _column(table)
        if any(c.name == column.name for c in columns):
            raise table.error("name", f"duplicate column {column.name!r}")
        columns.append(column)
    return tuple(columns)


def _column(table: _Table) -> Column:
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
        _check_pattern(table, kind, pattern)
    return Column(
        name=name,
        type=kind,
        required=table.boolean("required", True),
        nullable=table.boolean("nullable", True),
        pattern=pattern,
        allowed=_allowed(table, kind),
    )


def _check_pattern(table: _Table, kind: ColumnType, pattern: str) -> None:
    if kind != "string":
        raise table.error("pattern", f"only string columns take a pattern (this one is {kind})")
    try:  # compiled by the engine that will run it: polars' Rust regex, not Python's re
        pl.Series([""], dtype=pl.String).str.contains(f"^(?:{pattern})$")
    except plx.ComputeError as exc:
        reason = str(exc).split("\n\nThis error occurred", 1)[0]
        raise table.error("pattern", f"invalid regex: {reason}") from exc


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
