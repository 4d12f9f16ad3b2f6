"""The ``chute`` command line: thin commands (parsing and presentation) grouped by use — local.py
(run, up, env), convert.py (convert, contract suggest: light, started without the others),
uploads.py (upload, grant), operations.py (status, watch, show, rerun,
requeue, console), workflow_tests.py (test-workflow); options.py holds the exit codes and
the target options. May import chute.ops, and chute.local inside the commands that run it."""

from __future__ import annotations

import functools
import sys

import typer

LIGHT_COMMANDS = frozenset({"convert", "contract"})
"""Commands of ``chute.cli.convert``: run without importing the others (boto3, the runtime)."""


def build_app(*, light: bool = False) -> typer.Typer:
    """The ``chute`` app: every command, or (``light``) only those of ``chute.cli.convert``."""
    from chute.cli import convert

    app = typer.Typer(
        add_completion=False,
        pretty_exceptions_show_locals=False,
        no_args_is_help=True,
        help="chute: validate, convert and archive files through a Step Functions pipeline, "
        "on AWS or on an embedded local AWS.",
    )
    app.callback()(_options)
    groups = [convert.app]
    if not light:
        from chute.cli import local, operations, uploads, workflow_tests

        groups = [local.app, convert.app, uploads.app, operations.app, workflow_tests.app]
    for group in groups:
        app.add_typer(group)
    return app


@functools.cache
def _full_app() -> typer.Typer:
    return build_app()


def __getattr__(name: str) -> typer.Typer:
    """``chute.cli.app``: the app with every command, built on first use."""
    if name == "app":
        return _full_app()
    raise AttributeError(name)


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


def _options(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print chute's version and exit.",
    ),
    debug: bool = typer.Option(
        False, "--debug", help="On an unexpected error, print its traceback (anywhere in the line)."
    ),
) -> None:
    """chute: validate, convert and archive files through a Step Functions pipeline, on AWS or
    on an embedded local AWS."""


_HINTS = {
    "StateMachineDoesNotExist": "no chute pipeline at this endpoint (yet): start one with"
    " `chute up`, or check --endpoint-url / AWS_ENDPOINT_URL",
    "ResourceNotFoundException": "the pipeline's resources are missing at this target: check"
    " --endpoint-url / --stack",
    "NoSuchBucket": "the pipeline's buckets are missing at this target: check --endpoint-url /"
    " --stack",
    "EndpointConnectionError": "nothing answers at that endpoint: is `chute up` running?",
    "NoCredentialsError": "no AWS credentials: configure them (aws configure, AWS_PROFILE), or"
    " point at a local endpoint with --endpoint-url",
}


def one_line_error(exc: BaseException) -> str:
    """What an unexpected error says in one line, with what to do when we know."""
    code = (
        getattr(exc, "response", {}).get("Error", {}).get("Code")
        if hasattr(exc, "response")
        else None
    )
    name = str(code or type(exc).__name__)
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    hint = _HINTS.get(name) or _HINTS.get(type(exc).__name__)
    line = f"error: {message}" if name in message else f"error: {name}: {message}"
    return f"{line}\n  {hint}" if hint else line


def main(argv: list[str] | None = None) -> None:
    """The ``chute`` entry point: an unexpected error is one line (and what to do) and exit
    code 1; ``--debug`` anywhere prints its traceback instead."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    command = next((a for a in args if not a.startswith("-")), None)
    app = build_app(light=True) if command in LIGHT_COMMANDS else _full_app()
    if debug:
        app(args=args, prog_name="chute")
        return
    try:
        app(args=args, prog_name="chute", standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        from chute.cli.console import err

        err.print("interrupted")
        raise SystemExit(130) from None
    except Exception as exc:
        from chute.cli.console import err

        err.print(one_line_error(exc), markup=False, highlight=False, soft_wrap=True)
        err.print("  (run again with --debug for the traceback)", markup=False, soft_wrap=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
