"""Typed mode without a contract: column types inferred from the first chunk.

Each column gets the first of int, float, bool, date, timestamp that every non-empty value of the
first chunk parses as (with exactly the contract rules of tasks/data_contracts/check.py), else
string. The inferred contract then types every chunk; a later value that doesn't fit stops the
conversion with its row and column (a streaming engine can't revise the schema of rows already
written).
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from tasks.convert.engine import ChunkTyping
from tasks.convert.typed import ContractTyping
from tasks.data_contracts.check import validate_chunk
from tasks.data_contracts.model import Column, ColumnType, Contract, Match, OnError

CANDIDATES: tuple[ColumnType, ...] = ("int", "float", "bool", "date", "timestamp")
INFERRED = "inferred"


def infer_contract(chunk: pl.DataFrame) -> Contract:
    """A contract typing each column of ``chunk`` (all text) as narrowly as its values allow."""
    columns = tuple(Column(name=name, type=_infer(chunk, name)) for name in chunk.columns)
    return Contract(
        name=INFERRED,
        match=Match(),
        columns=columns,
        outputs=("jsonl",),
        on_error=OnError(policy="reject"),
    )


def _infer(chunk: pl.DataFrame, name: str) -> ColumnType:
    values = chunk.select(name)
    if values.filter(pl.col(name) != "").is_empty():
        return "string"  # nothing to go by
    for kind in CANDIDATES:
        trial = Contract(name=INFERRED, match=Match(), columns=(Column(name=name, type=kind),))
        result = validate_chunk(trial, trial.plan_header([name]), values, 2, report_limit=0)
        if result.problem_count == 0:
            return kind
    return "string"


class InferredTyping(ChunkTyping):
    """Infers the contract from the first chunk, then behaves like a declared contract."""

    def __init__(self) -> None:
        self._typing: ContractTyping | None = None
        self._header: list[str] = []

    def start(self, header: list[str]) -> pa.Schema | None:
        self._header = header
        return None  # known once the first chunk is seen

    def apply(
        self, chunk: pl.DataFrame, first_row: int
    ) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        if self._typing is None:
            self._typing = ContractTyping(infer_contract(chunk))
            self._typing.start(self._header)
        return self._typing.apply(chunk, first_row)
