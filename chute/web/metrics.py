"""The console's "at a glance" figures: files and bytes per minute by route, failures by error.
On AWS from the CloudWatch metrics chute already emits (namespace ``chute``, see
docs/operating.md "Logs and metrics"), read with one GetMetricData call, plus Step Functions'
own ``ExecutionsFailed`` for the failures that never reach quarantine; on the embedded runtime
from the executions themselves."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chute.ops import operate
from tasks import names
from tasks.workflow import Outcome

if TYPE_CHECKING:
    from chute.ops.deployment import Deployment
    from chute.ops.executions import ExecutionView

TRANSIENT_LABEL = "FAILED (AWS/States ExecutionsFailed)"


@dataclass
class Glance:
    source: str  # "executions" | "CloudWatch"
    minutes: list[str]  # labels, oldest first
    files: dict[str, list[float]]  # route -> files per minute
    bytes: dict[str, list[float]]  # route -> bytes per minute
    failures: dict[str, int]  # error name -> count over the window
    hours: int
    notes: list[str] = field(default_factory=list)


def _dimensions(**extra: str) -> list[dict[str, str]]:
    found = {**names.METRICS_DIMENSIONS, **extra}
    return [{"Name": k, "Value": v} for k, v in found.items()]


def from_cloudwatch(
    d: Deployment, *, hours: int, minutes: int, now: datetime | None = None, client: Any = None
) -> Glance:
    cloudwatch = client or d.session.client("cloudwatch", region_name=d.region)
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=minutes - 1)
    queries: list[dict[str, Any]] = []
    for route in names.ROUTES:
        queries.append(_query(f"files_{route}", names.METRIC_FILES_PROCESSED, 60, route=route))
        queries.append(_query(f"bytes_{route}", names.METRIC_BYTES_PROCESSED, 60, route=route))
    errors = _quarantine_errors(cloudwatch)[:50]
    for index, error in enumerate(errors):
        queries.append(
            _query(f"quarantined_{index}", names.METRIC_FILES_QUARANTINED, 3600, error=error)
        )
    queries.append(
        _query(
            "failed",
            "ExecutionsFailed",
            3600,
            namespace="AWS/States",
            dims=[{"Name": "StateMachineArn", "Value": d.state_machine_arn}],
        )
    )
    values: dict[str, list[tuple[datetime, float]]] = {}
    paginator = cloudwatch.get_paginator("get_metric_data")
    for page in paginator.paginate(
        MetricDataQueries=queries,
        StartTime=min(start, now - timedelta(hours=hours)),
        EndTime=now + timedelta(minutes=1),
    ):
        for result in page["MetricDataResults"]:
            pairs = list(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
            values.setdefault(result["Id"], []).extend(pairs)

    def per_minute(qid: str) -> list[float]:
        series = [0.0] * minutes
        for stamp, value in values.get(qid, []):
            index = int((stamp.astimezone(UTC) - start).total_seconds() // 60)
            if 0 <= index < minutes:
                series[index] += float(value)
        return series

    since = now - timedelta(hours=hours)

    def total(qid: str) -> int:
        return int(sum(v for t, v in values.get(qid, []) if t.astimezone(UTC) >= since))

    failures: Counter[str] = Counter()
    for index, error in enumerate(errors):
        failures[error] += total(f"quarantined_{index}")
    failures[TRANSIENT_LABEL] += total("failed")
    return Glance(
        source="CloudWatch",
        minutes=[(start + timedelta(minutes=i)).strftime("%H:%M") for i in range(minutes)],
        files={r: per_minute(f"files_{r}") for r in names.ROUTES},
        bytes={r: per_minute(f"bytes_{r}") for r in names.ROUTES},
        failures={k: v for k, v in failures.most_common() if v},
        hours=hours,
        notes=["ExecutionsFailed counts every failed execution, quarantined ones included"],
    )


def _query(
    qid: str,
    metric: str,
    period: int,
    *,
    namespace: str = names.METRICS_NAMESPACE,
    dims: list[dict[str, str]] | None = None,
    **dimensions: str,
) -> dict[str, Any]:
    """One GetMetricData query: the metric's Sum over ``period`` seconds, with chute's
    dimensions plus ``dimensions`` (or exactly ``dims``)."""
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": dims if dims is not None else _dimensions(**dimensions),
            },
            "Period": period,
            "Stat": "Sum",
        },
        "ReturnData": True,
    }


def _quarantine_errors(cloudwatch: Any) -> list[str]:
    """The error names FilesQuarantined has been recorded with (its ``error`` dimension)."""
    errors: list[str] = []
    listed = cloudwatch.get_paginator("list_metrics").paginate(
        Namespace=names.METRICS_NAMESPACE, MetricName=names.METRIC_FILES_QUARANTINED
    )
    for page in listed:
        for metric in page["Metrics"]:
            dims = {x["Name"]: x["Value"] for x in metric.get("Dimensions", [])}
            if "error" in dims and dims["error"] not in errors:
                errors.append(dims["error"])
    return errors


def from_executions(
    d: Deployment,
    view: Callable[[str], ExecutionView],
    *,
    hours: int,
    minutes: int,
    now: datetime | None = None,
) -> Glance:
    """The figures from the executions (the embedded runtime has no CloudWatch): ``view`` reads
    one execution (the console's cached views)."""
    now = now or datetime.now(UTC)
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    labels = [(start + timedelta(minutes=i)).strftime("%H:%M") for i in range(minutes)]
    files: dict[str, list[float]] = defaultdict(lambda: [0.0] * minutes)
    sizes: dict[str, list[float]] = defaultdict(lambda: [0.0] * minutes)
    failures: Counter[str] = Counter()
    since = now - timedelta(hours=hours)
    for item in operate.list_executions(d, None):
        if item["startDate"] < since:
            break  # newest first
        status, stopped = item["status"], item.get("stopDate")
        if status == "RUNNING" or (status == "SUCCEEDED" and (stopped or start) < start):
            continue  # read only what the figures need (views are kept)
        v = view(item["executionArn"])
        if v.outcome in (Outcome.QUARANTINED, Outcome.FAILED):
            failures[v.error or "(none)"] += 1
        if v.outcome != Outcome.SUCCEEDED or v.stopped is None or v.stopped < start:
            continue
        index = int((v.stopped - start).total_seconds() // 60)
        if 0 <= index < minutes:
            route = v.route or "?"
            files[route][index] += 1
            sizes[route][index] += v.size or 0
    return Glance(
        source="executions",
        minutes=labels,
        files=dict(files),
        bytes=dict(sizes),
        failures=dict(failures.most_common()),
        hours=hours,
    )
