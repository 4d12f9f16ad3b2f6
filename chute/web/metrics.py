"""At a glance on AWS: the CloudWatch metrics chute already emits (namespace ``chute``, see
docs/operating.md "Logs and metrics"), read with one GetMetricData call, plus Step Functions'
own ``ExecutionsFailed`` for the failures that never reach quarantine."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tasks import names

if TYPE_CHECKING:
    from chute.ops.deployment import Deployment
    from chute.web.data import Glance

ROUTES = ("lambda", "batch")
TRANSIENT_LABEL = "FAILED (AWS/States ExecutionsFailed)"


def _dimensions(**extra: str) -> list[dict[str, str]]:
    found = {**names.METRICS_DIMENSIONS, **extra}
    return [{"Name": k, "Value": v} for k, v in found.items()]


def from_cloudwatch(
    d: Deployment, *, hours: int, minutes: int, now: datetime | None = None, client: Any = None
) -> Glance:
    from chute.web.data import Glance

    cloudwatch = client or d.session.client("cloudwatch", region_name=d.region)
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=minutes - 1)
    queries: list[dict[str, Any]] = []

    def query(qid: str, metric: str, period: int, stat: str, dims: list[dict[str, str]]) -> None:
        queries.append(
            {
                "Id": qid,
                "MetricStat": {
                    "Metric": {
                        "Namespace": names.METRICS_NAMESPACE
                        if not metric.startswith("AWS/")
                        else "AWS/States",
                        "MetricName": metric.removeprefix("AWS/"),
                        "Dimensions": dims,
                    },
                    "Period": period,
                    "Stat": stat,
                },
                "ReturnData": True,
            }
        )

    for route in ROUTES:
        query(f"files_{route}", names.METRIC_FILES_PROCESSED, 60, "Sum", _dimensions(route=route))
        query(f"bytes_{route}", names.METRIC_BYTES_PROCESSED, 60, "Sum", _dimensions(route=route))
    errors: list[str] = []
    listed = cloudwatch.get_paginator("list_metrics").paginate(
        Namespace=names.METRICS_NAMESPACE, MetricName=names.METRIC_FILES_QUARANTINED
    )
    for page in listed:
        for metric in page["Metrics"]:
            dims = {x["Name"]: x["Value"] for x in metric.get("Dimensions", [])}
            if "error" in dims and dims["error"] not in errors:
                errors.append(dims["error"])
    for index, error in enumerate(errors[:50]):
        query(
            f"quarantined_{index}",
            names.METRIC_FILES_QUARANTINED,
            3600,
            "Sum",
            _dimensions(error=error),
        )
    query(
        "failed",
        "AWS/ExecutionsFailed",
        3600,
        "Sum",
        [{"Name": "StateMachineArn", "Value": d.state_machine_arn}],
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
    for index, error in enumerate(errors[:50]):
        failures[error] += total(f"quarantined_{index}")
    failures[TRANSIENT_LABEL] += total("failed")
    return Glance(
        source="CloudWatch",
        minutes=[(start + timedelta(minutes=i)).strftime("%H:%M") for i in range(minutes)],
        files={r: per_minute(f"files_{r}") for r in ROUTES},
        bytes={r: per_minute(f"bytes_{r}") for r in ROUTES},
        failures={k: v for k, v in failures.most_common() if v},
        hours=hours,
        notes=["ExecutionsFailed counts every failed execution, quarantined ones included"],
    )
