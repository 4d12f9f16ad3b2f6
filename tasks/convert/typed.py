"""Typed mode: a data contract drives the engine's typing of each chunk (tasks/data_contracts/)."""

from __future__ import annotations

import polars as pl
import pyarrow as pa

from tasks.convert.engine import ChunkTyping
from tasks.data_contracts.check import ErrorBudget, output_schema, validate_chunk
from tasks.data_contracts.model import Contract, HeaderPlan


class ContractTyping(ChunkTyping):
    """Checks the header and every row against ``contract``; applies its error policy."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.budget = ErrorBudget(contract)
        self._plan: HeaderPlan | None = None

    def start(self, header: list[str]) -> pa.Schema:
        self._plan = self.contract.plan_header(header)
        empty = pl.DataFrame(schema=output_schema(self.contract, self._plan))
        return empty.to_arrow().schema

    def apply(
        self, chunk: pl.DataFrame, first_row: int
    ) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        assert self._plan is not None, "start() first"
        result = validate_chunk(self.contract, self._plan, chunk, first_row)
        self.budget.add(result)  # raises ContractViolation when the policy says so
        return result.valid, result.rejected if result.bad_rows else None
