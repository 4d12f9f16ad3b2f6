"""Running chute on this machine (run, up, env): parsing and presentation over chute.ops.run and
chute.local.embedded. Exit codes: chute.cli.options.Exit."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from chute import DEFAULT_PORT
from chute.cli.console import console, err
from chute.cli.options import (
    ENDPOINT_FILE,
    Exit,
    Target,
    fail,
    local_environment,
    running_endpoint,
    serve_until_stopped,
    write_endpoint_file,
)
from tasks import names
from tasks.formats.keys import matches_suffix
from tasks.workflow import Outcome

if TYPE_CHECKING:  # the embedded runtime (moto) loads only for the commands that use it
    from chute.local.embedded import EmbeddedAws
    from chute.ops.deployment import Deployment
    from chute.ops.run import FileResult, RunOptions

app = typer.Typer()

_STYLE = {
    Outcome.SUCCEEDED: "green",
    Outcome.QUARANTINED: "yellow",
    "RUNNING": "cyan",
    "IGNORED": "dim",
    "WAITING": "cyan",
}


def _location(result: FileResult) -> str:
    ex = result.execution
    if result.ignored:
        return "not a processed extension (not uploaded)"
    if ex is None:
        return ""
    if ex.outcome == Outcome.SUCCEEDED and ex.output:
        target = ex.output.get("output", {})
        formats = "|".join(target.get("formats", []))
        where = f"s3://{target.get('bucket')}/{target.get('key')}.{{{formats}}}"
        return f"{where} -> {result.downloaded[0].parent}" if result.downloaded else where
    if ex.error:
        reason = f"{ex.error}: {result.reason}" if result.reason else ex.error
        return f"{reason} -> {result.report}" if result.report else reason
    return ex.current_state or ""


def _table(results: list[FileResult], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("key", "route", "status", "duration", "output / error"):
        table.add_column(column, overflow="fold")
    for r in results:
        ex = r.execution
        status = r.outcome
        style = _STYLE.get(status, "red")
        if r.expected_quarantine and status == Outcome.QUARANTINED:
            status = "QUARANTINED (expected)"
        duration = f"{ex.duration_seconds:.1f}s" if ex and ex.duration_seconds is not None else ""
        table.add_row(
            r.key,
            (ex.route if ex else None) or "-",
            f"[{style}]{status}[/]",
            duration,
            _location(r),
        )
    return table


def _as_json(results: list[FileResult]) -> str:
    rows: list[dict[str, Any]] = []
    for r in results:
        ex = r.execution
        rows.append(
            {
                "key": r.key,
                "execution": ex.name if ex else None,
                "route": ex.route if ex else None,
                "outcome": r.outcome,
                "expected": r.ok,
                "durationSeconds": ex.duration_seconds if ex else None,
                "error": ex.error if ex else None,
                "reason": r.reason,
                "report": str(r.report) if r.report else None,
                "output": (ex.output or {}).get("output") if ex else None,
                "downloaded": [str(p) for p in r.downloaded],
            }
        )
    return json.dumps(rows, indent=2, default=str)


_IAM_DEFAULT = os.environ.get("CHUTE_LOCAL_IAM", "1").strip().lower() not in (
    "0",
    "off",
    "false",
    "no",
)


@app.command()
def run(
    paths: Annotated[list[str], typer.Argument(help="Files or directories to process.")],
    out: Annotated[Path, typer.Option(help="Where outputs are downloaded.")] = Path("chute-out"),
    endpoint_url: Annotated[
        str | None,
        typer.Option(help="Use a running endpoint (e.g. `chute up`) instead of starting one."),
    ] = None,
    port: Annotated[
        int, typer.Option(help="Port of the embedded endpoint (0: a free one).")
    ] = DEFAULT_PORT,
    large_threshold: Annotated[
        int | None,
        typer.Option(help="Files of at least this many bytes go to AWS Batch (embedded only)."),
    ] = None,
    expect_quarantine: Annotated[
        list[str] | None,
        typer.Option(help="Glob of keys expected to be quarantined (counts as success)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for all executions.")] = 900,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    fresh: Annotated[
        bool,
        typer.Option(help="Start the embedded runtime empty (delete .chute/state first)."),
    ] = False,
) -> None:
    """Upload files to staging, follow every execution to its end, download the outputs."""
    from chute.local.embedded import EmbeddedAws, EmbeddedError, LocalSettings
    from chute.ops.run import RunError, RunOptions, collect_files

    try:
        files = collect_files(paths)
    except RunError as exc:
        raise fail(exc) from exc
    options = RunOptions(
        out_dir=out, expect_quarantine=expect_quarantine or [], timeout_seconds=timeout
    )
    ignored = [f.key for f in files if not matches_suffix(f.key, options.suffixes)]
    if ignored and not as_json:
        err.print(
            f"IGNORED: not a processed extension ({', '.join(options.suffixes)}):"
            f" {', '.join(ignored)}"
        )
    if endpoint_url is not None and large_threshold is not None:
        raise fail(ValueError("--large-threshold only applies to the embedded runtime"))
    runtime: EmbeddedAws | None = None
    if endpoint_url is None:
        settings = LocalSettings(port=port, fresh=fresh)
        if large_threshold is not None:
            settings.large_file_threshold_bytes = large_threshold
        runtime = EmbeddedAws(settings)
        try:
            runtime.start()
        except EmbeddedError as exc:
            runtime.stop()
            raise fail(exc, Exit.RUNTIME) from exc
        target = Target(endpoint_url=runtime.endpoint_url, region=settings.region)
    else:
        target = Target(endpoint_url=endpoint_url)
    try:
        results, finished = _run_with_display(target.connect(), options, files, as_json)
    finally:
        if runtime is not None:
            runtime.stop()
    if as_json:
        console.print_json(_as_json(results))
    else:
        console.print(_table(results, "chute run"))
        if runtime is not None:
            console.print(f"logs: {runtime.log_dir}")
            _print_next_steps(runtime.settings.state_dir, out)
    if not finished:
        err.print(f"[red]timed out[/] after {timeout:.0f}s waiting for executions")
        raise typer.Exit(Exit.TIMEOUT)
    raise typer.Exit(Exit.OK if all(r.ok for r in results) else Exit.FAILED)


def _print_next_steps(state_dir: Path, out: Path) -> None:
    console.print(
        f"outputs downloaded to {out}/; the buckets and execution history stay in {state_dir}"
        " for the next run"
    )
    console.print(
        "next: `chute up` serves the same pipeline until Ctrl-C, with the web console at"
        f" http://127.0.0.1:{DEFAULT_PORT + 4}/ (upload there, or `chute upload FILE --wait`;"
        " `chute status`, `chute show KEY`)",
        soft_wrap=True,
    )


def _run_with_display(
    d: Deployment,
    options: RunOptions,
    files: list[Any],
    quiet: bool,
) -> tuple[list[FileResult], bool]:
    from chute.ops.run import run_files

    options.quarantine_bucket = d.quarantine_bucket
    common = {
        "s3": d.s3,
        "sfn": d.sfn,
        "staging_bucket": d.staging_bucket,
        "state_machine_arn": d.state_machine_arn,
        "options": options,
        "files": files,
    }
    latest: list[FileResult] = []

    def keep(results: list[FileResult]) -> None:
        latest[:] = results

    try:
        if quiet or not console.is_terminal:
            return run_files(**common)
        with Live(console=console, refresh_per_second=4, transient=True) as live:

            def show(results: list[FileResult]) -> None:
                keep(results)
                live.update(_table(results, "chute run (running)"))

            return run_files(**common, on_progress=show)
    except KeyboardInterrupt:
        if latest:
            console.print(_table(latest, "chute run (interrupted)"))
        waiting = sum(1 for r in latest if r.outcome in ("RUNNING", "WAITING"))
        err.print(
            f"interrupted: {waiting} file(s) had not finished. Uploaded files stay in staging:"
            " the next `chute run` or `chute up` in this folder announces them again."
        )
        raise typer.Exit(130) from None


@app.command()
def up(
    port: Annotated[
        int, typer.Option(help="Port to serve the AWS endpoint on (0: a free one).")
    ] = DEFAULT_PORT,
    grant_port: Annotated[
        int, typer.Option(help="Port to serve the upload grant API on.")
    ] = DEFAULT_PORT + 1,
    large_threshold: Annotated[
        int, typer.Option(help="Files of at least this many bytes go to AWS Batch.")
    ] = names.DEFAULT_LARGE_FILE_THRESHOLD_BYTES,
    fresh: Annotated[
        bool,
        typer.Option(help="Start empty: delete the state kept in .chute/state (buckets, history)."),
    ] = False,
    console_port: Annotated[
        int | None,
        typer.Option(help="Port of the web console (default: --port + 4; 0: no console)."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            metavar="RULE",
            help="Rehearse a failure (repeatable; also CHUTE_FAULTS, comma-separated): "
            "s3:OPERATION:503|500[:COUNT[:PREFIX]], lambda:STEP:kill[:COUNT[:OPERATION]], "
            "lambda:STEP:error=NAME[:COUNT], batch:kill|term[:COUNT[:OPERATION]], "
            "batch:exit=CODE[:COUNT]. See docs/local.md 'Rehearsing failures'.",
        ),
    ] = None,
    mock_config: Annotated[
        Path | None,
        typer.Option(
            envvar="SFN_MOCK_CONFIG",
            help="Step Functions Local's MockConfigFile: StartExecution on "
            "<stateMachineArn>#<TestCase> runs with its mocked answers "
            "(docs/testing-workflows.md).",
        ),
    ] = None,
    iam: Annotated[
        bool,
        typer.Option(
            "--iam/--no-iam",
            help="Each function and the Batch job may do only what the stack's role allows "
            "(default; CHUTE_LOCAL_IAM=0 also turns it off).",
        ),
    ] = _IAM_DEFAULT,
) -> None:
    """Serve the embedded local AWS with the pipeline deployed, until Ctrl-C.

    Buckets and execution history are kept in .chute/state and restored at the next start;
    files that were in flight are processed again (see "State across restarts" in docs/local.md).
    """
    from chute.local.embedded import EmbeddedAws, EmbeddedError, LocalSettings

    rules = _fault_rules(fault or [])
    if mock_config is not None:
        from chute.ops.mock_cases import MockConfigError, load_mock_config

        try:
            load_mock_config(mock_config)
        except MockConfigError as exc:
            raise fail(exc) from exc
    runtime = EmbeddedAws(
        LocalSettings(
            port=port,
            grant_port=grant_port,
            large_file_threshold_bytes=large_threshold,
            fresh=fresh,
            faults=tuple(rules),
            mock_config=mock_config,
            iam=iam,
        )
    )
    try:
        runtime.start()
    except EmbeddedError as exc:
        runtime.stop()
        raise fail(exc, Exit.RUNTIME) from exc
    _print_banner(runtime)
    web = _start_console(
        runtime.endpoint_url,
        runtime.settings.port + 4 if console_port is None else console_port,
    )
    if web is None and console_port:
        runtime.stop()
        raise typer.Exit(Exit.RUNTIME)
    _print_recovery(runtime)
    _print_armed(runtime, mock_config)
    write_endpoint_file(runtime.endpoint_url, runtime.settings.region)
    try:
        serve_until_stopped()
    finally:
        if (running_endpoint() or {}).get("endpointUrl") == runtime.endpoint_url:
            ENDPOINT_FILE.unlink(missing_ok=True)
        if web is not None:
            web.stop()
        runtime.stop()


def _fault_rules(flags: list[str]) -> list[str]:
    """The fault rules of CHUTE_FAULTS and every --fault, checked (exit 2 naming the bad one)."""
    from chute.local.faults import ENV_FAULTS, FaultSpecError, parse

    rules: list[str] = []
    for origin, text in [(ENV_FAULTS, os.environ.get(ENV_FAULTS, ""))] + [
        ("--fault", f) for f in flags
    ]:
        try:
            rules.extend(rule.text for rule in parse(text))
        except FaultSpecError as exc:
            raise fail(ValueError(f"{origin}: {exc}")) from exc
    return rules


def _print_banner(runtime: EmbeddedAws) -> None:
    r = runtime.resources
    console.print(f"chute embedded AWS on [bold]{runtime.endpoint_url}[/] (Ctrl-C to stop)")
    console.print(f"  staging bucket  s3://{r.staging_bucket}")
    console.print(f"  output bucket   s3://{r.output_bucket}")
    console.print(f"  archive bucket  s3://{r.archive_bucket}")
    console.print(f"  quarantine      s3://{r.quarantine_bucket}")
    console.print(f"  state machine   {r.state_machine_arn}")
    console.print(f"  grant API       POST {runtime.grant_url}")
    console.print(
        f"  user pool       {runtime.user_pool_id} (app client {runtime.user_pool_client_id})"
    )
    console.print(f"  logs            {runtime.log_dir}")


def _print_armed(runtime: EmbeddedAws, mock_config: Path | None) -> None:
    """The mock config and faults in force, and how to point clients at the endpoint."""
    if mock_config is not None:
        console.print(f"  mock config     {mock_config} (start executions on <arn>#<TestCase>)")
    for rule in runtime.settings.faults:
        console.print(f"  [yellow]fault armed[/]     {rule}")
    runtime.faults.on_fire = lambda line: err.print(f"[yellow]fault fired[/] {line}")
    env = local_environment(runtime.endpoint_url, runtime.settings.region)
    console.print("  environment     for aws/SDK clients (also `chute env`):")
    console.print(f"    export {' '.join(f'{k}={v}' for k, v in env.items())}", soft_wrap=True)
    console.print(
        f"try: aws --endpoint-url {runtime.endpoint_url} s3 cp FILE"
        f" s3://{runtime.resources.staging_bucket}/ (with the environment above)"
    )


@app.command()
def env(
    endpoint_url: Annotated[
        str | None, typer.Option(help="The endpoint (default: the `chute up` of this folder).")
    ] = None,
) -> None:
    """Print the environment for aws/SDK clients to use the embedded runtime:
    eval "$(chute env)"."""
    found = running_endpoint()
    url = endpoint_url or (found["endpointUrl"] if found else None)
    if url is None:
        url = f"http://127.0.0.1:{DEFAULT_PORT}"
        # a shell comment, without backticks: `eval "$(chute env 2>&1)"` must not run anything
        err.print(f"# no chute up running from this folder; assuming {url}")
    region = found["region"] if found and not endpoint_url else "us-east-1"
    for name, value in local_environment(url, region).items():
        print(f"export {name}={value}")


def _start_console(endpoint_url: str, port: int) -> Any:
    """The web console over the embedded runtime (None: not started, the reason printed)."""
    if port == 0:
        return None
    from chute.ops.deployment import connect
    from chute.web.server import ConsoleServer

    try:
        web = ConsoleServer(connect(endpoint_url=endpoint_url), port=port).start()
    except OSError as exc:
        why = f"port {port}: {exc.strerror}; pick --console-port"
        err.print(f"[yellow]console not started:[/] {why}")
        return None
    console.print(f"  console         [bold]{web.url}[/]")
    return web


def _print_recovery(runtime: EmbeddedAws) -> None:
    found = runtime.recovery
    state = runtime.settings.state_dir / "state"
    if not runtime.settings.persist:
        return
    if found.empty:
        console.print(f"  state           {state} (empty; kept across restarts)")
        return
    objects = ", ".join(f"{n} in {b}" for b, n in sorted(found.objects.items()) if n)
    console.print(
        f"  state           {state}: restored {objects or 'no objects'};"
        f" {found.executions} executions ({found.seconds:.2f}s; --fresh starts empty)"
    )
    if found.interrupted:
        console.print(
            f"  interrupted     {len(found.interrupted)} executions were running at the stop"
            " (now ABORTED, chute.Interrupted)"
        )
    if found.announced:
        console.print(
            f"  resumed         {len(found.announced)} files announced again:"
            f" {', '.join(found.announced[:5])}{' ...' if len(found.announced) > 5 else ''}"
        )
    for key, execution in found.failed:
        console.print(
            f"  [red]failed[/]          {key}: chute rerun {execution}"
            f" --endpoint-url {runtime.endpoint_url}"
        )
