"""Typed mode: a data contract drives the engine (tasks/data_contracts/, checked natively)."""

from __future__ import annotations

from dataclasses import dataclass

import chute_native

from tasks.data_contracts.check import native_contract, violation
from tasks.data_contracts.model import Contract
from tasks.errors import ContractViolation


@dataclass(frozen=True)
class ContractTyping:
    """Checks the header and every row against ``contract``; applies its error policy."""

    contract: Contract

    def start(self, header: list[str]) -> chute_native.Contract:
        """The contract planned on the file's header (ContractViolation if it doesn't fit)."""
        return native_contract(self.contract, self.contract.plan_header(header))

    def violation(self, failed: chute_native.ContractFailed) -> ContractViolation:
        return violation(self.contract, failed)
