"""The ``chute`` command line: thin commands (parsing and presentation) grouped by use — local.py
(run, up, convert), uploads.py (upload, grant), operations.py (status, watch, show, rerun,
requeue, console), workflow_tests.py (test-workflow); options.py holds the exit codes and
the target options. May import chute.ops, and chute.local inside the commands that run it."""

from __future__ import annotations

import typer

from chute.cli import local, operations, uploads, workflow_tests

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="chute: validate, convert and archive files through a Step Functions pipeline, "
    "on AWS or on an embedded local AWS.",
)
for group in (local.app, uploads.app, operations.app, workflow_tests.app):
    app.add_typer(group)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        from chute import __version__

        try:
            installed = version("chute")
        except PackageNotFoundError:
            installed = __version__
        typer.echo(f"chute {installed}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print chute's version and exit.",
    ),
) -> None:
    """chute: validate, convert and archive files through a Step Functions pipeline, on AWS or
    on an embedded local AWS."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
