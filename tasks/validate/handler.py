"""Lambda entry point of the Validate step: ``{"source", "execution"}`` -> Plan."""

from __future__ import annotations

import functools
import os
from typing import Any

from tasks import log
from tasks.adapters.s3 import S3Store
from tasks.models import ObjectRef
from tasks.settings import ValidateSettings
from tasks.validate.domain import validate


@functools.cache
def _settings() -> ValidateSettings:
    return ValidateSettings.from_mapping(os.environ)


@functools.cache
def _store() -> S3Store:
    return S3Store()


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    log.bind(execution=event.get("execution"))
    source = ObjectRef.from_dict(event.get("source"))
    return validate(source, _store(), _settings()).to_dict()
