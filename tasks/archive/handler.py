"""Lambda entry point of the Archive and ArchiveReplaced steps: ``{"file", "execution"}`` ->
archived ObjectRef."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from tasks import log, metrics
from tasks.adapters.s3 import S3Store
from tasks.archive.domain import archive
from tasks.entry import lambda_handler, per_container
from tasks.metrics import NOT_RECORDED
from tasks.models import FileSpec
from tasks.settings import ArchiveSettings


@per_container
def _settings() -> ArchiveSettings:
    return ArchiveSettings.from_mapping(os.environ)


@per_container
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


@lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    file = FileSpec.from_dict(event.get("file"))
    log.bind(key=file.ref.key)
    # ArchiveReplaced: the file was not converted, so it counts in no conversion metric
    replaced = event.get("outcome") == "replaced"
    return archive(
        file,
        _store(),
        _settings(),
        route=event.get("route"),
        started=_started(event.get("started")),
        metrics=NOT_RECORDED if replaced else metrics.Recorder(),
    ).to_dict()
