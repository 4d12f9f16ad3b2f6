"""The completion events (docs/events.md) as `chute watch` and the web console read them: the
stack's rule copies every event of its bus into a log group (on AWS and in the embedded runtime
alike), so reading never takes an event from anyone else (an SQS target would)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from chute.ops.deployment import Deployment
from tasks import names


@dataclass(frozen=True)
class CompletionEvent:
    """One event as EventBridge delivered it (``detail``: docs/events.md)."""

    id: str
    detail_type: str
    time: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def detail_json(self) -> str:
        return json.dumps(self.detail)

    @property
    def outcome(self) -> str:
        return str(self.detail.get("outcome", ""))

    @property
    def execution(self) -> str:
        return str(self.detail.get("execution", ""))

    @property
    def key(self) -> str:
        file = self.detail.get("file")
        return str(file.get("key", "")) if isinstance(file, dict) else ""


def parse(message: str) -> CompletionEvent | None:
    """An event from a log line the rule wrote, or None for anything else (not chute's)."""
    try:
        event = json.loads(message)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("source") != names.EVENT_SOURCE:
        return None
    detail = event.get("detail")
    return CompletionEvent(
        id=str(event.get("id", "")),
        detail_type=str(event.get("detail-type", "")),
        time=str(event.get("time", "")),
        detail=detail if isinstance(detail, dict) else {},
    )


def read_events(
    d: Deployment, *, since: datetime | None = None, execution: str | None = None
) -> list[CompletionEvent]:
    """The deployment's completion events (oldest first), those since ``since``, or those of one
    execution (ARN). Empty where the deployment has no events log group (a stack from before
    the events; the caller shows nothing)."""
    if not d.events_log_group:
        return []
    kwargs: dict[str, Any] = {"logGroupName": d.events_log_group}
    if since is not None:
        kwargs["startTime"] = int(since.astimezone(UTC).timestamp() * 1000)
    found: list[CompletionEvent] = []
    try:
        for page in d.logs.get_paginator("filter_log_events").paginate(**kwargs):
            for item in page.get("events", []):
                event = parse(str(item.get("message", "")))
                if event is not None and (execution is None or event.execution == execution):
                    found.append(event)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return []
        raise
    return sorted(found, key=lambda e: e.time)


def by_execution(events: list[CompletionEvent]) -> dict[str, CompletionEvent]:
    """The latest event of each execution (ARN)."""
    return {e.execution: e for e in events}
