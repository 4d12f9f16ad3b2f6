"""Checking rows against a contract: the rules, and the contract as the native core runs them.

Every value is checked in the native core (``native/src/contract.rs``, ``values.rs``) in the
conversion's one streaming pass; this module hands it the contract planned on a file's header
(``native_contract``) and turns what it finds into the workflow's ``ContractViolation``.

Value rules, on the strings exactly as in the file -- surrounding spaces are NOT trimmed, so
``" 5"`` is not a valid int:
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
- pattern: a regex in Rust's ``regex`` syntax (the crate polars used) -- no look-around or
  backreferences, and ``\\d`` matches any Unicode digit (write ``[0-9]`` for ASCII). It is
  anchored for you as ``^(?:pattern)$``: it must match the whole value.
- allowed: strings compare exactly (case-sensitive); ints compare the number (``+2`` is 2).

Each bad cell is one problem, named by the first check it fails (nullable, type, pattern,
allowed); a row with a problem is a bad row.

Error policy: "reject" fails the file on the first chunk with a problem; "drop_rows" writes
the valid rows, leaves the bad ones out (into the rejected rows, every file column as written
plus ``_row`` and ``_errors``) and fails the file once more than ``max_rejected_rows`` rows were
dropped. ``report_limit`` caps how many problems are listed (counts are always exact).
"""

from __future__ import annotations

import chute_native

from tasks.data_contracts.model import Contract, HeaderPlan, Problem, violation_message
from tasks.errors import ContractViolation


def native_contract(contract: Contract, plan: HeaderPlan) -> chute_native.Contract:
    """The contract as the native core checks it on a file with ``plan.header``: its output
    columns (contract columns, then kept extras), where each is read from, and its checks."""
    source = {name: index for index, name in enumerate(plan.header)}
    columns: list[chute_native.ContractColumn] = []
    for column in contract.columns:
        allowed = column.allowed or None
        strings = [str(v) for v in allowed] if allowed and column.type == "string" else None
        ints = [int(v) for v in allowed] if allowed and column.type == "int" else None
        columns.append(
            (
                column.name,
                column.type,
                source.get(column.name),
                True,
                column.nullable,
                column.pattern,
                strings,
                ints,
            )
        )
    for name in plan.kept:
        columns.append((name, "string", source[name], False, True, None, None, None))
    return chute_native.Contract(
        columns,
        list(contract.nulls),
        policy=contract.on_error.policy,
        max_rejected_rows=contract.on_error.max_rejected_rows,
        report_limit=contract.on_error.report_limit,
    )


def problems_of(found: list[tuple[int, str, str, str]]) -> tuple[Problem, ...]:
    """The native core's problems: (row, column, value, reason)."""
    return tuple(Problem(row, column, value, reason) for row, column, value, reason in found)


def violation(contract: Contract, failed: chute_native.ContractFailed) -> ContractViolation:
    """The workflow's error for a file the contract rejects (exact counts, first problems)."""
    problem_count, bad_rows, found, detail = failed.args
    message = violation_message(
        contract.name, problems_of(found), problem_count, bad_rows, detail=detail
    )
    return ContractViolation(message)
