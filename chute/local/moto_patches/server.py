"""moto's HTTP server: every request to the endpoint passes chute.local.faults first (injected S3
errors, signals to workers), and finds its service without scanning moto's package each time
(moto lists its folder and matches ~150 URL patterns under one global lock per request).
"""

from __future__ import annotations

from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from chute.local.moto_patches.seam import HOOKS, Fixes, Kind

FIXES = Fixes()


@FIXES.declare(
    "request-filter",
    Kind.HOOK,
    DomainDispatcherApplication,
    "__call__",
    why="moto's server has no middleware hook; injected faults answer before it",
)
def _request_filter(original: Any) -> Any:
    def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        answer = HOOKS.request_filter(environ) if HOOKS.request_filter else None
        if answer is None:
            return original(self, environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    return __call__


@FIXES.declare(
    "server-dispatch-cache",
    Kind.SPEED,
    DomainDispatcherApplication,
    "get_backend_for_host",
    why="every request lists moto's folder and matches every URL pattern under one lock",
)
def _dispatch_cache(original: Any) -> Any:
    def get_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
        cache: dict[str | None, Any] = self.__dict__.setdefault("_chute_backend_of_host", {})
        if host in cache:
            return cache[host]
        backend = original(self, host)
        cache[host] = backend
        return backend

    return get_backend_for_host
