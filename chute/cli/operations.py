"""Operating a pipeline (status, watch, show, rerun, requeue): parsing and presentation over
chute.ops.operate, each over the one ``Deployment`` of its target options."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from chute.cli.console import console, err
from chute.cli.options import TARGET, Exit, Target, fail, serve_until_stopped, with_target
from chute.ops import operate
from chute.ops.executions import ExecutionView
from tasks.workflow import Outcome

app = typer.Typer()


def _row(e: ExecutionView) -> dict[str, Any]:
    return {
        "execution": e.name,
        "key": e.key,
        "status": e.status,
        "outcome": e.outcome,
        "route": e.route,
        "started": e.started.isoformat() if e.started else None,
        "durationSeconds": round(e.duration_seconds, 3) if e.duration_seconds is not None else None,
        "error": e.error,
    }


def _table(views: list[ExecutionView], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("key", "status", "route", "started", "duration", "error", "execution"):
        table.add_column(column, overflow="fold")
    for e in views:
        table.add_row(
            e.key or "-",
            e.outcome,
            e.route or "-",
            e.started.strftime("%Y-%m-%d %H:%M:%S") if e.started else "",
            f"{e.duration_seconds:.1f}s" if e.duration_seconds is not None else "",
            e.error or "",
            e.name,
        )
    return table


def _attempts(state: operate.StateRun) -> str:
    """The state's task attempts; for a Batch job also the attempts Batch made itself."""
    text = str(state.attempts) if state.attempts else ""
    if state.batch_attempts is not None and state.batch_attempts != state.attempts:
        text = f"{text} (Batch: {state.batch_attempts})".strip()
    return text


def _readable_cause(cause: str | None) -> str:
    """A Lambda error's message (not its stack trace); other causes as they are (cut)."""
    try:
        document = json.loads(cause or "")
    except ValueError:
        return (cause or "")[:2000]
    if isinstance(document, dict) and isinstance(document.get("errorMessage"), str):
        return str(document["errorMessage"])
    return (cause or "")[:2000]


@app.command()
@with_target
def status(
    failed: Annotated[bool, typer.Option("--failed", help="Only failed executions.")] = False,
    running: Annotated[bool, typer.Option("--running", help="Only running ones.")] = False,
    since: Annotated[str | None, typer.Option(help="Only newer than this, e.g. 2h.")] = None,
    key: Annotated[str | None, typer.Option(help="Only files whose key starts so.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    target: Target = TARGET,
) -> None:
    """Recent executions: file, status, route, start, duration, error."""
    if failed and running:
        raise fail(ValueError("--failed and --running exclude each other"))
    d = target.connect()
    try:
        views = operate.executions(
            d,
            status="FAILED" if failed else "RUNNING" if running else None,
            since=operate.parse_since(since),
            key_prefix=key,
            limit=limit,
        )
        if failed:  # failures since rerun to success are done with
            views = operate.unresolved_failures(d, views)
    except operate.OperateError as exc:
        raise fail(exc) from exc
    if as_json:
        print(json.dumps([_row(v) for v in views], indent=2))
    else:
        console.print(_table(views, f"executions ({len(views)})"))


@app.command()
@with_target
def watch(
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", help="Keep watching for new executions until Ctrl-C (uploads arriving)."
        ),
    ] = False,
    target: Target = TARGET,
) -> None:
    """Live view of executions: the running ones and every one started while watching, until
    none runs (or with --follow until Ctrl-C)."""
    from datetime import UTC, datetime, timedelta

    d = target.connect()
    seen: dict[str, ExecutionView] = {}
    since = datetime.now(UTC) - timedelta(seconds=max(interval, 1.0))
    try:
        with Live(console=console, refresh_per_second=4) as live:
            while True:
                operate.watch_round(d, seen, since)
                running = sum(v.status == "RUNNING" for v in seen.values())
                title = f"watching: {running} running" + (
                    " (--follow: Ctrl-C to stop)" if follow else ""
                )
                live.update(_table(list(seen.values()), title))
                if not running and not follow:
                    break
                time.sleep(interval)
    except KeyboardInterrupt:
        console.print("stopped watching (executions go on)")


@app.command()
@with_target
def show(
    execution: Annotated[str, typer.Argument(help="Execution name or ARN, or a file key.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    target: Target = TARGET,
) -> None:
    """One execution as a timeline: states, durations, attempts, errors, locations."""
    d = target.connect()
    try:
        tl = operate.timeline(d, operate.resolve(d, execution))
    except operate.OperateError as exc:
        raise fail(exc) from exc
    replaced = operate.replaced_files(tl.execution)
    owned_by = operate.outputs_now_owned_by(d, tl.execution)
    if as_json:
        document = _show_document(tl, replaced, owned_by)
        print(json.dumps(document, indent=2, default=str))
        return
    _print_timeline(tl)
    _print_locations(tl, replaced, owned_by)
    _print_error(tl)
    if tl.console_url:
        console.print(f"console: {tl.console_url}", soft_wrap=True)


def _show_document(
    tl: operate.Timeline,
    replaced: list[operate.Replacement],
    owned_by: list[tuple[str, operate.Replacement]],
) -> dict[str, Any]:
    e = tl.execution
    states = [
        {
            "state": s.name,
            "started": s.started.isoformat(),
            "seconds": s.seconds,
            "attempts": s.attempts,
            "errors": s.errors,
            "batchJobId": s.batch_job_id,
            "logStream": s.log_stream,
            "batchAttempts": s.batch_attempts,
            "batchExitCode": s.batch_exit_code,
            "batchReason": s.batch_reason,
        }
        for s in tl.states
    ]
    return {
        **_row(e),
        "arn": e.arn,
        "input": tl.input,
        "output": e.output,
        "cause": e.cause,
        "states": states,
        "consoleUrl": tl.console_url,
        "replaced": [{"key": r.key, "uploaded": r.uploaded} for r in replaced],
        "outputsNowOwnedBy": [
            {"output": key, "key": r.key, "uploaded": r.uploaded} for key, r in owned_by
        ],
    }


def _print_timeline(tl: operate.Timeline) -> None:
    e = tl.execution
    console.print(f"[bold]{e.name}[/]  {e.outcome}  route={e.route or '-'}  key={e.key}")
    table = Table(title_justify="left")
    table.add_column("state", no_wrap=True)
    for column in ("start", "duration", "attempts", "errors", "batch job / log"):
        table.add_column(column, overflow="fold")
    for s in tl.states:
        table.add_row(
            s.name,
            s.started.strftime("%H:%M:%S.%f")[:-3],
            f"{s.seconds:.2f}s" if s.seconds is not None else "…",
            _attempts(s),
            ", ".join(s.errors),
            " ".join(x for x in (s.batch_job_id, s.log_stream) if x),
        )
    console.print(table)


def _print_locations(
    tl: operate.Timeline,
    replaced: list[operate.Replacement],
    owned_by: list[tuple[str, operate.Replacement]],
) -> None:
    e = tl.execution
    source = tl.input.get("source", {})
    console.print(f"input:  s3://{source.get('bucket')}/{source.get('key')}", soft_wrap=True)
    if e.output:
        written = e.output.get("output", {})
        for key in written.get("keys", {}).values():
            console.print(f"output: s3://{written.get('bucket')}/{key}", soft_wrap=True)
    for r in replaced:
        console.print(
            f"[yellow]replaced:[/] the outputs of s3://{source.get('bucket')}/{r.key}"
            f" (uploaded {r.uploaded or 'earlier'}): the later upload wins",
            soft_wrap=True,
        )
    for key, r in owned_by:
        console.print(
            f"[yellow]now:[/] {key} belongs to s3://{source.get('bucket')}/{r.key}"
            f" (uploaded {r.uploaded or 'later'}), a later upload that maps to the same outputs",
            soft_wrap=True,
        )


def _print_error(tl: operate.Timeline) -> None:
    e = tl.execution
    if not e.error:
        return
    console.print(f"[red]error:[/] {e.error}")
    batch = [operate.batch_summary(s) for s in tl.states if s.batch_job_id]
    if e.route == "batch" and batch and batch[-1] and e.error == "States.TaskFailed":
        console.print(f"cause:  Batch {batch[-1]}", soft_wrap=True)
        return
    console.print(f"cause:  {_readable_cause(e.cause)}", soft_wrap=True)
    if e.route == "batch" and batch and batch[-1]:
        console.print(f"batch:  {batch[-1]}", soft_wrap=True)


@app.command()
@with_target
def rerun(
    executions: Annotated[
        list[str] | None, typer.Argument(help="Execution names/ARNs or file keys.")
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Every failed execution.")] = False,
    since: Annotated[str | None, typer.Option(help="With --failed: newer than, e.g. 2h.")] = None,
    force: Annotated[bool, typer.Option(help="Rerun even permanent failures.")] = False,
    rate: Annotated[float, typer.Option(help="Reruns per second at most.")] = 5.0,
    target: Target = TARGET,
) -> None:
    """Redrive failed executions (AWS), or restart them with the same input."""
    if not executions and not failed:
        raise fail(ValueError("name executions or pass --failed"))
    d = target.connect()
    try:
        if failed:
            views = operate.executions(
                d, status="FAILED", since=operate.parse_since(since), limit=10_000
            )
            # quarantined files need a fix and `chute requeue`, not a rerun (unless --force)
            skipped = [v for v in views if v.outcome == Outcome.QUARANTINED and not force]
            arns = [v.arn for v in operate.unresolved_failures(d, views) if v not in skipped]
            if skipped:
                err.print(
                    f"{len(skipped)} quarantined file(s) left alone (fix them, then"
                    " `chute requeue KEY` or `chute requeue --all`):"
                    f" {', '.join(v.key or v.name for v in skipped)}"
                )
        else:
            arns = [operate.resolve(d, x) for x in executions or []]
        results = operate.rerun(d, arns, force=force, per_second=rate)
    except operate.OperateError as exc:
        raise fail(exc) from exc
    for r in results:
        style = {
            "redriven": "green",
            "restarted": "green",
            "requeued": "green",
            "skipped": "cyan",
        }.get(r.action, "yellow")
        console.print(f"[{style}]{r.action:9}[/] {r.execution}: {r.reason}", soft_wrap=True)
    if any(r.action == "refused" for r in results):
        raise typer.Exit(Exit.FAILED)


@app.command()
@with_target
def requeue(
    key: Annotated[str | None, typer.Argument(help="Quarantined file key.")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Every quarantined file.")] = False,
    since: Annotated[str | None, typer.Option(help="With --all: newer than, e.g. 2h.")] = None,
    target: Target = TARGET,
) -> None:
    """Move quarantined files back to staging (after fixing them or their contract)."""
    d = target.connect()
    try:
        moved = operate.requeue(d, key, everything=everything, since=operate.parse_since(since))
    except operate.OperateError as exc:
        raise fail(exc) from exc
    for m in moved:
        source = f"s3://{d.quarantine_bucket}/{m.key}"
        console.print(
            f"requeued {source} -> s3://{d.staging_bucket}/{m.key} ({m.size} bytes)",
            soft_wrap=True,
        )
    if not moved:
        console.print("nothing to requeue")


@app.command("console")
@with_target
def web_console(
    port: Annotated[int, typer.Option(help="Port to serve the console on.")] = 4570,
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback; anything else exposes it).")
    ] = "127.0.0.1",
    target: Target = TARGET,
) -> None:
    """Serve the web console over a deployment (AWS with your credentials, or --endpoint-url),
    on localhost, until Ctrl-C. See docs/console.md."""
    from chute.web.server import LOOPBACK, ConsoleServer

    d = target.connect()
    try:
        web = ConsoleServer(d, host=host, port=port).start()
    except OSError as exc:
        err.print(f"[red]error:[/] cannot listen on {host}:{port}: {exc.strerror}; pick --port")
        raise typer.Exit(Exit.RUNTIME) from exc
    if host not in LOOPBACK:
        err.print(f"[yellow]warning:[/] listening on {host}: anyone who reaches it acts as you")
    where = f"stack {d.state_machine_arn}" if d.on_aws else f"the endpoint {target.endpoint_url}"
    console.print(f"chute console on [bold]{web.url}[/] over {where} (Ctrl-C to stop)")
    try:
        serve_until_stopped()
    finally:
        web.stop()
