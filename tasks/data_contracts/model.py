"""The data-contract model: contracts, matching keys, dialect, planning a header (pure).

A ``ContractSet`` is what ``config.load_contracts`` makes of ``contracts/contracts.toml``; the
conversion engine asks a ``Contract`` to plan a file's header here and validates each chunk of
rows in the native core (``check.native_contract``). Nothing here does I/O: Validate uses this
module (and ``config``) on every cold start.

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
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from tasks.errors import ContractViolation
from tasks.formats import Delimiter, OutputFormat

ColumnType = Literal["string", "int", "float", "bool", "date", "timestamp"]
ExtraColumns = Literal["reject", "drop", "keep"]
MissingColumns = Literal["reject", "null"]
ErrorPolicy = Literal["reject", "drop_rows"]
Unmatched = Literal["infer", "text", "reject"]

COLUMN_TYPES: Final[tuple[ColumnType, ...]] = (
    "string",
    "int",
    "float",
    "bool",
    "date",
    "timestamp",
)
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
class Contract:
    name: str
    match: Match
    columns: tuple[Column, ...]
    dialect: Dialect = Dialect()
    outputs: tuple[OutputFormat, ...] = ("jsonl",)
    extra_columns: ExtraColumns = "reject"
    missing_columns: MissingColumns = "reject"
    on_error: OnError = OnError()
    nulls: tuple[str, ...] = ("",)
    """Values that are null in typed columns (string columns keep them as written)."""

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
    hint = _delimiter_hint(contract, header)
    if problems and hint:
        problems = [Problem(p.row, p.column, p.value, f"{p.reason}; {hint}") for p in problems]
    return problems


_DELIMITER_NAMES = {",": "a comma", "\t": "a tab", ";": "a semicolon", "|": "a pipe"}


def _delimiter_hint(contract: Contract, header: Sequence[str]) -> str:
    """When the header is one field that another delimiter splits into the contract's columns,
    the file was read with the wrong delimiter: say which one the header uses."""
    if len(header) != 1:
        return ""
    known = {c.name for c in contract.columns}
    for delimiter, name in _DELIMITER_NAMES.items():
        parts = [part.strip() for part in header[0].split(delimiter)]
        if len(parts) > 1 and known.intersection(parts):
            return (
                f"the header is one field that {name} splits into the contract's columns:"
                " check the delimiter (the contract's dialect, or --delimiter)"
            )
    return ""
