"""Validating chunks of rows against a contract, vectorised with polars (the conversion engine's).

Value rules (``validate_chunk``), on the strings exactly as in the file -- surrounding spaces are
NOT trimmed, so ``" 5"`` is not a valid int:
- empty field (or one of the contract's ``nulls``, e.g. ``NA``): null in typed columns; every
  value stays as written in string columns. With
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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import polars as pl

from tasks.data_contracts.model import (
    ERRORS_COLUMN,
    ROW_COLUMN,
    Column,
    ColumnType,
    Contract,
    HeaderPlan,
    Problem,
    violation_message,
)
from tasks.errors import ContractViolation

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


def output_schema(contract: Contract, plan: HeaderPlan) -> pl.Schema:
    """The schema of ``ChunkResult.valid`` for this plan (e.g. for an empty output file)."""
    schema = {c.name: DTYPES[c.type] for c in contract.columns}
    return pl.Schema([(name, schema.get(name, pl.String())) for name in plan.output_columns])


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
    errors = _errors_text(checked).alias(ERRORS_COLUMN)
    if not bad_rows:  # the usual chunk: every row valid, no problem (a problem marks its row)
        valid = frame.select(_output_exprs(contract, plan))
        rejected = frame.head(0).select(*plan.header, ROW_COLUMN, errors)
        return ChunkResult(valid, rejected, (), 0, 0)
    per_column = frame.select(pl.col(_reason_name(n)).is_not_null().sum() for n in checked)
    problem_count = sum(int(v) for v in per_column.row(0)) if checked else 0
    valid = frame.filter(~pl.col(_BAD)).select(_output_exprs(contract, plan))
    bad = frame.filter(pl.col(_BAD))
    rejected = bad.select(*plan.header, ROW_COLUMN, errors)
    problems = _first_problems(bad, checked, limit)
    return ChunkResult(valid, rejected, problems, problem_count, bad_rows)


def _checked(
    contract: Contract, plan: HeaderPlan, chunk: pl.DataFrame, first_row: int
) -> tuple[pl.DataFrame, list[str]]:
    """The chunk plus its file row numbers, typed values, one reason column per checked column
    (null = fine) and the row's bad flag; and the names of the checked columns."""
    columns = [contract.column(name) for name in plan.present]
    reasons = {c.name: expr for c in columns if (expr := _reason(c, contract.nulls)) is not None}
    frame = (
        chunk.lazy()  # one query: polars runs the columns' expressions in parallel
        .with_row_index(ROW_COLUMN)
        .with_columns(
            (pl.col(ROW_COLUMN).cast(pl.Int64) + first_row).alias(ROW_COLUMN),
            *[_typed(c).alias(_typed_name(c.name)) for c in columns],
        )
        .with_columns(*[expr.alias(_reason_name(name)) for name, expr in reasons.items()])
        .with_columns(_any_bad(list(reasons)).alias(_BAD))
        .collect()
    )
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


def _reason(column: Column, nulls: tuple[str, ...] = ("",)) -> pl.Expr | None:
    """Why a cell is bad (the first failed check), null when fine; None when nothing to check.
    ``nulls``: the values that are null in a typed column (a string column's: only "")."""
    raw = _raw(column.name)
    if column.type == "string" or nulls == ("",):
        empty = raw == ""
    else:
        empty = raw.is_in(pl.Series(nulls, dtype=pl.String).implode())
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
        known = typed.is_in(pl.Series(list(column.allowed), dtype=DTYPES[column.type]).implode())
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
            exprs.append(
                pl.col(_typed_name(column.name)).cast(DTYPES[column.type]).alias(column.name)
            )
        else:
            exprs.append(pl.lit(None, DTYPES[column.type]).alias(column.name))
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
