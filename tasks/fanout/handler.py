"""Lambda adapter of the fan-out steps: ``{"action": "plan" | "commit" | "abandon", "plan":
Plan, "fanout": FanOut, "execution": str}`` (the parts themselves are converted by the convert
function: tasks.convert.handler)."""

from __future__ import annotations

import os
from typing import Any

from tasks import log
from tasks.adapters.s3 import S3Store
from tasks.data_contracts.config import load_contracts
from tasks.data_contracts.model import Contract, ContractSet
from tasks.entry import lambda_handler, per_container
from tasks.fanout.domain import FanOut, abandon, commit, plan_parts
from tasks.models import Plan
from tasks.settings import FanOutSettings


@per_container
def settings() -> FanOutSettings:
    return FanOutSettings.from_mapping(os.environ)


@per_container
def store() -> S3Store:
    return S3Store()


@per_container
def contracts() -> ContractSet | None:
    path = settings().contracts_file
    return load_contracts(path) if path else None


def contract_of(plan: Plan) -> Contract | None:
    if not plan.target.contract:
        return None
    loaded = contracts()
    if loaded is None:
        raise ValueError(f"plan names contract {plan.target.contract!r} but none are loaded")
    return loaded.get(plan.target.contract)


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = event.get("action")
    plan = Plan.from_dict(event.get("plan"))
    log.bind(key=plan.file.ref.key)
    if action == "plan":
        execution = str(event.get("execution") or "")
        return plan_parts(plan, store(), execution, settings().part_bytes, contract_of(plan))
    fanout = FanOut.from_dict(event.get("fanout") or {})
    if action == "commit":
        return commit(plan, store(), fanout, contract_of(plan))
    if action == "abandon":
        return {"deleted": abandon(store(), fanout)}
    raise ValueError(f"unknown fan-out action {action!r}: plan, commit or abandon")
