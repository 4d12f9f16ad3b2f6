"""The one place that owns chute's custom metrics: CloudWatch Embedded Metric Format (EMF).

A metric is a JSON line on stdout that CloudWatch Logs turns into a metric: no API call, no
permission, no latency added to a step. Namespace, names and the one dimension (``service``)
are in :mod:`tasks.names`, where the CDK dashboard reads them; per-file values (key, execution)
are never dimensions, each distinct value would be a metric of its own.

Steps record what they did (:func:`file_processed`, :func:`file_quarantined`); the handler calls
:func:`flush` once at the end of every invocation, which prints at most one document. Under the
embedded runtime that line lands in the worker's log with the others.
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from tasks import log, names

_metrics: Metrics | None = None


def get_metrics() -> Metrics:
    """Built on first use (nothing at import); namespace and service are explicit, so the
    ``POWERTOOLS_*`` environment variables cannot move the metrics away from the dashboard."""
    global _metrics
    if _metrics is None:
        _metrics = Metrics(
            namespace=names.METRICS_NAMESPACE, service=names.METRICS_DIMENSIONS["service"]
        )
    return _metrics


def file_processed(size_bytes: int, route: str | None = None, seconds: float | None = None) -> None:
    """An original was converted (by ``route``) and archived, ``seconds`` after the execution
    started."""
    metrics = get_metrics()
    if route:
        metrics.add_dimension(name="route", value=route)
    metrics.add_metric(name=names.METRIC_FILES_PROCESSED, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=names.METRIC_BYTES_PROCESSED, unit=MetricUnit.Bytes, value=size_bytes)
    if seconds is not None:
        metrics.add_metric(
            name=names.METRIC_PROCESSING_SECONDS, unit=MetricUnit.Seconds, value=seconds
        )


def file_quarantined(error_name: str | None = None) -> None:
    """An original was moved to quarantine because of ``error_name``."""
    metrics = get_metrics()
    if error_name:
        metrics.add_dimension(name="error", value=error_name)
    metrics.add_metric(name=names.METRIC_FILES_QUARANTINED, unit=MetricUnit.Count, value=1)


def execution_redriven() -> None:
    """The scheduled auto-redrive resumed a failed execution."""
    get_metrics().add_metric(name=names.METRIC_EXECUTIONS_REDRIVEN, unit=MetricUnit.Count, value=1)


def redrives_exhausted() -> None:
    """An execution failed again after its last allowed redrive: a person must look at it."""
    get_metrics().add_metric(name=names.METRIC_REDRIVES_EXHAUSTED, unit=MetricUnit.Count, value=1)


def flush(execution: str | None = None) -> None:
    """Print what this invocation recorded as one EMF document; nothing if it recorded nothing.

    ``execution`` goes in as a plain property (searchable in Logs Insights, not a dimension).
    Never raises: a lost metric must not fail a step whose work is done, nor replace the error
    it is failing with (handlers call this in a ``finally``).
    """
    metrics = get_metrics()
    if not metrics.metric_set:
        return
    try:
        if execution:
            metrics.add_metadata(key="execution", value=execution)
        metrics.flush_metrics()
    except Exception as exc:
        log.warning("metrics not flushed", error=type(exc).__name__, reason=str(exc))
        discard()


def discard() -> None:
    """Drop what was recorded and not flushed (e.g. by a domain call made outside a handler)."""
    get_metrics().clear_metrics()
