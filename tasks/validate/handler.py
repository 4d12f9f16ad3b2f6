"""Lambda entry point of the Validate step: ``{"source", "execution"}`` -> Plan."""

from __future__ import annotations

import os
from typing import Any

from tasks import log
from tasks.adapters.s3 import S3Store
from tasks.data_contracts.config import load_contracts
from tasks.data_contracts.model import ContractSet
from tasks.entry import lambda_handler, per_container
from tasks.models import ObjectRef
from tasks.settings import ValidateSettings
from tasks.validate.domain import validate


@per_container
def _settings() -> ValidateSettings:
    return ValidateSettings.from_mapping(os.environ)


@per_container
def _contracts() -> ContractSet | None:
    """Loaded once per cold start; a bad file fails every invocation (ContractConfigError).
    Patterns are compiled by the native core, as Convert and Batch compile them: a pattern
    Rust's regex rejects fails here, before any conversion starts."""
    path = _settings().contracts_file
    return load_contracts(path) if path else None


@per_container
def _store() -> S3Store:
    return S3Store()


@lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    source = ObjectRef.from_dict(event.get("source"))
    log.bind(key=source.key)
    return validate(source, _store(), _settings(), _contracts()).to_dict()
