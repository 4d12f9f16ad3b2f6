"""Lambda adapter of the convert step: ``{"plan": Plan, "execution": str}`` -> Output dict; with
``"part"`` and ``"fanout"``: one part of a fanned-out file (tasks.fanout.part)."""

from __future__ import annotations

import os
from typing import Any

from tasks import log
from tasks.adapters.s3 import S3Store
from tasks.convert.domain import convert
from tasks.data_contracts.config import load_contracts
from tasks.data_contracts.model import ContractSet
from tasks.entry import lambda_handler, per_container
from tasks.fanout.domain import FanOut
from tasks.fanout.part import convert_part
from tasks.models import Plan
from tasks.settings import ConvertSettings


@per_container
def settings() -> ConvertSettings:
    return ConvertSettings.from_mapping(os.environ)


@per_container
def store() -> S3Store:
    return S3Store()


@per_container
def contracts() -> ContractSet | None:
    path = settings().contracts_file
    return load_contracts(path) if path else None


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    plan = Plan.from_dict(event.get("plan"))
    log.bind(key=plan.file.ref.key)
    if "part" in event:
        fanout = FanOut.from_dict(event.get("fanout") or {})
        return convert_part(
            plan,
            store(),
            settings(),
            fanout.execution,
            fanout.data_start,
            event["part"],
            contracts(),
        )
    return convert(plan, store(), settings(), contracts()).to_dict()
