"""The one place that owns chute's custom metrics: CloudWatch Embedded Metric Format (EMF).

A metric is a JSON line on stdout that CloudWatch Logs turns into a metric: no API call, no
permission, no latency added to a step. Namespace, names and the one dimension (``service``)
are in :mod:`tasks.names`, where the CDK dashboard reads them; per-file values (key, execution)
are never dimensions, each distinct value would be a metric of its own.

Domains record what they did on the sink they are given (:class:`Sink`: a :class:`Recorder` from
the handler, :data:`NOT_RECORDED` by default, so a domain call outside a handler records nothing);
``tasks.entry.lambda_handler`` prints what an invocation recorded as at most one document at its
end (Powertools' ``log_metrics``). Under the embedded runtime that line lands in the worker's log.
"""

from __future__ import annotations

from typing import Protocol

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from tasks import log, names


class _QuietEMF(AmazonCloudWatchEMFProvider):
    """Powertools' EMF output (``log_metrics`` and ``flush_metrics`` call it), flushed quietly:
    nothing (not even a warning) when nothing was recorded, and never an exception -- a lost
    metric must not fail a step whose work is done, nor replace the error it is failing with."""

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        if not self.metric_set:
            self.clear_metrics()  # metadata or dimensions set for nothing
            return
        try:
            super().flush_metrics(raise_on_empty_metrics=raise_on_empty_metrics)
        except Exception as exc:
            log.warning("metrics not flushed", error=type(exc).__name__, reason=str(exc))
            self.clear_metrics()


_metrics: Metrics | None = None


def get_metrics() -> Metrics:
    """Built on first use (nothing at import); namespace and service are explicit, so the
    ``POWERTOOLS_*`` environment variables cannot move the metrics away from the dashboard."""
    global _metrics
    if _metrics is None:
        namespace, service = names.METRICS_NAMESPACE, names.METRICS_DIMENSIONS["service"]
        metrics = Metrics(namespace=namespace, service=service)
        metrics.provider = _QuietEMF(  # on the data Powertools shares between Metrics objects
            namespace=namespace,
            service=service,
            metric_set=metrics.metric_set,
            dimension_set=metrics.dimension_set,
            metadata_set=metrics.metadata_set,
            default_dimensions=metrics.default_dimensions,
        )
        _metrics = metrics
    return _metrics


class Sink(Protocol):
    """What the domains record."""

    def file_processed(
        self, size_bytes: int, route: str | None = None, seconds: float | None = None
    ) -> None:
        """An original was converted (by ``route``) and archived, ``seconds`` after the
        execution started."""

    def file_quarantined(self, error_name: str | None = None) -> None:
        """An original was moved to quarantine because of ``error_name``."""

    def execution_redriven(self) -> None:
        """The scheduled auto-redrive resumed a failed execution."""

    def redrives_exhausted(self) -> None:
        """An execution failed again after its last allowed redrive: a person must look at it."""


class Recorder:
    """The sink handlers give their domain: chute's metrics, printed at the invocation's end."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._metrics = metrics or get_metrics()

    def file_processed(
        self, size_bytes: int, route: str | None = None, seconds: float | None = None
    ) -> None:
        if route:
            self._metrics.add_dimension(name="route", value=route)
        self._count(names.METRIC_FILES_PROCESSED)
        self._metrics.add_metric(
            name=names.METRIC_BYTES_PROCESSED, unit=MetricUnit.Bytes, value=size_bytes
        )
        if seconds is not None:
            self._metrics.add_metric(
                name=names.METRIC_PROCESSING_SECONDS, unit=MetricUnit.Seconds, value=seconds
            )

    def file_quarantined(self, error_name: str | None = None) -> None:
        if error_name:
            self._metrics.add_dimension(name="error", value=error_name)
        self._count(names.METRIC_FILES_QUARANTINED)

    def execution_redriven(self) -> None:
        self._count(names.METRIC_EXECUTIONS_REDRIVEN)

    def redrives_exhausted(self) -> None:
        self._count(names.METRIC_REDRIVES_EXHAUSTED)

    def _count(self, name: str) -> None:
        self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


class _NotRecorded:
    def file_processed(
        self, size_bytes: int, route: str | None = None, seconds: float | None = None
    ) -> None:
        pass

    def file_quarantined(self, error_name: str | None = None) -> None:
        pass

    def execution_redriven(self) -> None:
        pass

    def redrives_exhausted(self) -> None:
        pass


NOT_RECORDED: Sink = _NotRecorded()
"""The domains' default: a call outside a handler (a test, a tool) records nothing."""
