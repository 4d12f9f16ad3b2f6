"""Lambda entry point of the Archive step: ``{"file", "execution"}`` -> archived ObjectRef."""

from __future__ import annotations

import functools
import os
from datetime import datetime
from typing import Any

from tasks import log, metrics
from tasks.adapters.s3 import S3Store
from tasks.archive.domain import archive
from tasks.models import FileSpec
from tasks.settings import ArchiveSettings


@functools.cache
def _settings() -> ArchiveSettings:
    return ArchiveSettings.from_mapping(os.environ)


@functools.cache
def _store() -> S3Store:
    return S3Store()


def _started(value: object) -> datetime | None:
    """The execution's start ($$.Execution.StartTime, ISO 8601), if given and readable."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    execution = event.get("execution")
    log.bind(execution=execution)
    file = FileSpec.from_dict(event.get("file"))
    log.bind(key=file.ref.key)
    try:
        return archive(
            file,
            _store(),
            _settings(),
            route=event.get("route"),
            started=_started(event.get("started")),
        ).to_dict()
    finally:
        metrics.flush(execution)
