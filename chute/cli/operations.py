"""Operating a pipeline (status, watch, show, rerun, requeue): parsing and presentation over
chute.ops.operate, each over the one ``Deployment`` of its target options."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from chute.cli.console import console, err
from chute.cli.options import TARGET, Exit, Target, fail, serve_until_stopped, with_target
from chute.ops import operate
from chute.ops.deployment import Deployment
from chute.ops.events import CompletionEvent, by_execution, read_events
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


def _table(
    views: list[ExecutionView], title: str, announced: dict[str, CompletionEvent] | None = None
) -> Table:
    table = Table(title=title, title_justify="left")
    columns = ["key", "status", "route", "started", "duration", "error", "execution"]
    if announced is not None:
        columns.append("event")
    for column in columns:
        table.add_column(column, overflow="fold")
    for e in views:
        extra = [] if announced is None else [_event_text(announced.get(e.arn))]
        table.add_row(
            e.key or "-",
            e.outcome,
            e.route or "-",
            e.started.strftime("%Y-%m-%d %H:%M:%S") if e.started else "",
            f"{e.duration_seconds:.1f}s" if e.duration_seconds is not None else "",
            e.error or "",
            e.name,
            *extra,
        )
    return table


def _event_text(event: CompletionEvent | None) -> str:
    return event.detail_type if event is not None else ""


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
    failed: Annotated[
        bool, typer.Option("--failed", help="Only files whose latest execution failed.")
    ] = False,
    running: Annotated[bool, typer.Option("--running", help="Only running ones.")] = False,
    since: Annotated[str | None, typer.Option(help="Only newer than this, e.g. 2h.")] = None,
    key: Annotated[str | None, typer.Option(help="Only files whose key starts so.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
    every: Annotated[
        bool,
        typer.Option("--all", help="Every execution, not only each file's latest."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    target: Target = TARGET,
) -> None:
    """Recent files, each by its latest execution: file, status, route, start, duration, error."""
    if failed and running:
        raise fail(ValueError("--failed and --running exclude each other"))
    d = target.connect()
    try:
        after = operate.parse_since(since)
        views = operate.executions(
            d,
            status="FAILED" if failed else "RUNNING" if running else None,
            since=after,
            key_prefix=key,
            limit=limit,
            per_file=not every,
        )
        if failed:  # each file's latest attempt: a file fixed since is done with
            views = operate.actionable_failures(views)
        ignored = [] if running else operate.ignored_files(d, key_prefix=key, since=after)
    except operate.OperateError as exc:
        raise fail(exc) from exc
    if as_json:
        rows = [_row(v) for v in views] + [
            {
                "execution": None,
                "key": f.key,
                "status": None,
                "outcome": "IGNORED",
                "route": None,
                "started": f.modified.isoformat(),
                "durationSeconds": None,
                "error": f.reason,
            }
            for f in ignored
        ]
        print(json.dumps(rows, indent=2))
        return
    console.print(_table(views, f"{'executions' if every else 'files'} ({len(views)})"))
    for f in ignored:
        console.print(
            f"[dim]IGNORED[/] s3://{f.bucket}/{f.key}: {f.reason}",
            soft_wrap=True,
        )


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
    none runs (when none runs yet: until one has started and ended), or with --follow until
    Ctrl-C. Not on a terminal: one line per change, as it happens."""
    d = target.connect()
    seen: dict[str, ExecutionView] = {}
    since = datetime.now(UTC) - timedelta(seconds=max(interval, 1.0))
    lines = _ChangeLines()
    live = Live(console=console, refresh_per_second=4) if console.is_terminal else None
    try:
        with live or contextlib.nullcontext():
            while True:
                operate.watch_round(d, seen, since)
                announced = by_execution(read_events(d, since=since))
                running = sum(v.status == "RUNNING" for v in seen.values())
                if live is not None:
                    title = f"watching: {running} running" + (
                        " (--follow: Ctrl-C to stop)" if follow else ""
                    )
                    live.update(_table(list(seen.values()), title, announced))
                else:
                    lines.print_changes(seen.values(), announced)
                    lines.once("watching: one line per change (Ctrl-C to stop)")
                if not follow and seen and not running:
                    break
                if not follow and not seen:
                    lines.once("no execution yet: waiting for one to start (Ctrl-C to stop)")
                time.sleep(interval)
    except KeyboardInterrupt:
        console.print("stopped watching (executions go on)")


class _ChangeLines:
    """`chute watch` where there is no terminal (a pipe, a file, CI): one line per execution
    whose status changed, written at once."""

    def __init__(self) -> None:
        self._printed: dict[str, str] = {}
        self._said: set[str] = set()
        self._events: set[str] = set()

    def print_changes(
        self, views: Iterable[ExecutionView], announced: dict[str, CompletionEvent] | None = None
    ) -> None:
        for v in sorted(views, key=lambda x: str(x.started)):
            state = f"{v.outcome}:{v.current_state}"
            if self._printed.get(v.arn) != state:
                self._printed[v.arn] = state
                when = datetime.now(UTC).strftime("%H:%M:%S")
                error = f" ({v.error})" if v.error else ""
                running = v.status == "RUNNING" and v.current_state
                where = f" at {v.current_state}" if running else ""
                print(f"{when} {v.key or v.name} {v.outcome}{where}{error}", flush=True)
            event = (announced or {}).get(v.arn)
            if event is not None and event.id not in self._events:
                # its own line: status lines keep their shape (scripts read the outcome last)
                self._events.add(event.id)
                when = datetime.now(UTC).strftime("%H:%M:%S")
                print(f"{when} {v.key or v.name} event: {event.detail_type}", flush=True)

    def once(self, line: str) -> None:
        if line not in self._said:
            self._said.add(line)
            err.print(line)


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
    _print_locations(d, tl, replaced, owned_by)
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


def _where_the_file_is(d: Deployment, e: ExecutionView, source: dict[str, Any]) -> str:
    """The uploaded file, and where it is now when a step moved it."""
    staged = f"s3://{source.get('bucket')}/{source.get('key')}"
    archive = (e.output or {}).get("archive") or {}
    if e.outcome == Outcome.QUARANTINED and e.key:
        return (
            f"s3://{d.quarantine_bucket}/{e.key} (uploaded as {staged}; fix it, then"
            f" `chute requeue {e.key}`)"
        )
    if archive.get("bucket") and archive.get("key"):
        return f"{staged} (archived: s3://{archive['bucket']}/{archive['key']})"
    return staged


def _print_locations(
    d: Deployment,
    tl: operate.Timeline,
    replaced: list[operate.Replacement],
    owned_by: list[tuple[str, operate.Replacement]],
) -> None:
    e = tl.execution
    source = tl.input.get("source", {})
    console.print(f"input:  {_where_the_file_is(d, e, source)}", soft_wrap=True)
    if e.output:
        written = e.output.get("output", {})
        for key in written.get("keys", {}).values():
            console.print(f"output: s3://{written.get('bucket')}/{key}", soft_wrap=True)
    convert = (e.output or {}).get("convert") or {}
    if isinstance(convert.get("schema"), dict):
        typed = ", ".join(f"{name} {kind}" for name, kind in convert["schema"].items())
        console.print(f"schema: {typed}", soft_wrap=True)
    for w in convert.get("widened") or []:
        console.print(
            f"widened: {w.get('column')} {w.get('from')} -> {w.get('to')} at row {w.get('row')}"
            f" ({w.get('value')!r}): the file was read twice",
            soft_wrap=True,
        )
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
    failed: Annotated[
        bool, typer.Option("--failed", help="Every file whose latest execution failed.")
    ] = False,
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
            arns = [v.arn for v in operate.actionable_failures(views) if v not in skipped]
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
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Your fixed copy: uploaded instead of the quarantined one."),
    ] = None,
    target: Target = TARGET,
) -> None:
    """Move quarantined files back to staging (after fixing them or their contract); with
    --file, send your fixed copy of one file in its place."""
    d = target.connect()
    try:
        moved = operate.requeue(
            d, key, everything=everything, since=operate.parse_since(since), replacement=file
        )
    except operate.OperateError as exc:
        raise fail(exc) from exc
    for m in moved:
        source = str(file) if file else f"s3://{d.quarantine_bucket}/{m.key}"
        replaced = "; the quarantined copy and its report removed" if file else ""
        console.print(
            f"requeued {source} -> s3://{d.staging_bucket}/{m.key} ({m.size} bytes{replaced})",
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
