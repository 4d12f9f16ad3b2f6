"""What every Lambda handler shares: per-container factories and one decorator.

``@lambda_handler`` wraps a handler in Powertools' ``inject_lambda_context(clear_state=True)``
(each invocation's log lines start from no keys but the Lambda context's, then the execution
name from the event, the correlation id) and ``log_metrics`` (what the invocation recorded is
printed as one EMF document at its end, also when it fails; see :mod:`tasks.metrics`).
``@per_container`` caches a handler's settings and clients for the container's life; tests forget
them all with :func:`reset`. Imports only ``tasks.log`` and ``tasks.metrics`` (no domain, no
boto3): handlers import it at cold start.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from tasks import log, metrics

T = TypeVar("T")
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

_factories: list[functools._lru_cache_wrapper[Any]] = []


def per_container(factory: Callable[[], T]) -> Callable[[], T]:
    """``factory`` built on first use, then kept while the container is warm."""
    cached = functools.cache(factory)
    _factories.append(cached)
    return cached


def reset() -> None:
    """Forget every handler's settings and clients: the next invocation builds them again from
    its environment (tests: nothing built on one test's moto leaks into the next)."""
    for cached in _factories:
        cached.cache_clear()


class _NoContext:
    """Stands in for the Lambda context when a caller passes none (tests, tools)."""

    function_name = "local"
    memory_limit_in_mb = 0
    invoked_function_arn = ""
    aws_request_id = ""


def lambda_handler(handler: Handler) -> Handler:
    """The handler with fresh log keys (``execution`` from the event, if any) and its metrics
    flushed at the end of every invocation. Powertools' wrappers are built on the first call:
    nothing at import."""

    @functools.cache
    def wrapped() -> Handler:
        def bound(event: dict[str, Any], context: Any) -> dict[str, Any]:
            execution = event.get("execution") if isinstance(event, dict) else None
            if execution:
                log.bind(execution=execution)
                metrics.get_metrics().add_metadata(key="execution", value=execution)
            return handler(event, context)

        measured = metrics.get_metrics().log_metrics(bound)
        logged: Handler = log.get_logger().inject_lambda_context(measured, clear_state=True)
        return logged

    @functools.wraps(handler)
    def run(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return wrapped()(event, _NoContext() if context is None else context)

    return run
