"""The exit codes of every ``chute`` command, and how a usage error ends one (no heavy imports:
``chute convert`` uses them too)."""

from __future__ import annotations

from enum import IntEnum

import typer

from chute.cli.console import err


class Exit(IntEnum):
    """The exit codes of every ``chute`` command."""

    OK = 0
    FAILED = 1  # a file did not reach its expected outcome; a rerun was refused
    USAGE = 2  # bad usage or input; the deployment can't be reached
    RUNTIME = 3  # the embedded runtime could not start
    TIMEOUT = 4  # timed out waiting for executions


def fail(exc: Exception, code: Exit = Exit.USAGE) -> typer.Exit:
    """Print ``error: <exc>`` and return the exit to raise."""
    err.print(f"[red]error:[/] {exc}")
    return typer.Exit(code)
