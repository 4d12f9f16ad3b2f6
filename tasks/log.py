"""The one place that owns chute's logger: JSON lines, static lowercase messages, keyword fields.

The execution name is the correlation id: handlers and the Batch entrypoint call
``bind(execution=...)`` once per invocation.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from aws_lambda_powertools import Logger

_logger: Logger | None = None


class _CurrentStdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is now (it is swapped by test capture and the local
    runtime), not the stream that existed when the logger was built."""

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def get_logger() -> Logger:
    global _logger
    if _logger is None:
        _logger = Logger(service="chute", level=logging.INFO, logger_handler=_CurrentStdout())
    return _logger


def bind(**fields: Any) -> None:
    """Attach fields (e.g. ``execution``) to every following log line of this invocation."""
    get_logger().append_keys(**fields)


def info(message: str, **fields: Any) -> None:
    get_logger().info(message, extra=fields)


def warning(message: str, **fields: Any) -> None:
    get_logger().warning(message, extra=fields)


def error(message: str, **fields: Any) -> None:
    get_logger().error(message, extra=fields)
