"""The operations commands (status, watch, show, rerun, requeue): parsing and presentation over
chute.ops.operate, registered on the main app by chute.cli."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from chute.cli.console import console, err
from chute.ops.deployment import Deployment, DeploymentError, connect
from chute.ops.executions import ExecutionView, view
from tasks import names

EXIT_FAILED, EXIT_USAGE = 1, 2

Endpoint = Annotated[
    str | None, typer.Option(help="Embedded runtime endpoint (e.g. http://127.0.0.1:4566).")
]
Stack = Annotated[str | None, typer.Option(help="AWS: stack name (default Chute).")]
Profile = Annotated[str | None, typer.Option(help="AWS: profile.")]
Region = Annotated[str | None, typer.Option(help="AWS: region.")]


def _connect(
    endpoint_url: str | None, stack: str | None, profile: str | None, region: str | None
) -> Deployment:
    try:
        return connect(endpoint_url=endpoint_url, stack=stack, profile=profile, region=region)
    except DeploymentError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/] {exc}")
    return typer.Exit(EXIT_USAGE)


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


def _readable_cause(cause: str | None) -> str:
    """A Lambda error's message (not its stack trace); other causes as they are (cut)."""
    try:
        document = json.loads(cause or "")
    except ValueError:
        return (cause or "")[:2000]
    if isinstance(document, dict) and isinstance(document.get("errorMessage"), str):
        return str(document["errorMessage"])
    return (cause or "")[:2000]


def register(app: typer.Typer) -> None:
    from chute.ops import operate

    @app.command()
    def status(
        failed: Annotated[bool, typer.Option("--failed", help="Only failed executions.")] = False,
        running: Annotated[bool, typer.Option("--running", help="Only running ones.")] = False,
        since: Annotated[str | None, typer.Option(help="Only newer than this, e.g. 2h.")] = None,
        key: Annotated[str | None, typer.Option(help="Only files whose key starts so.")] = None,
        limit: Annotated[int, typer.Option(help="At most this many rows.")] = 50,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        endpoint_url: Endpoint = None,
        stack: Stack = None,
        profile: Profile = None,
        region: Region = None,
    ) -> None:
        """Recent executions: file, status, route, start, duration, error."""
        if failed and running:
            raise _fail(ValueError("--failed and --running exclude each other"))
        d = _connect(endpoint_url, stack, profile, region)
        try:
            views = operate.executions(
                d,
                status="FAILED" if failed else "RUNNING" if running else None,
                since=operate.parse_since(since),
                key_prefix=key,
                limit=limit,
            )
        except operate.OperateError as exc:
            raise _fail(exc) from exc
        if as_json:
            print(json.dumps([_row(v) for v in views], indent=2))
        else:
            console.print(_table(views, f"executions ({len(views)})"))

    @app.command()
    def watch(
        interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
        endpoint_url: Endpoint = None,
        stack: Stack = None,
        profile: Profile = None,
        region: Region = None,
    ) -> None:
        """Live view of running executions until they finish (Ctrl-C to stop watching)."""
        d = _connect(endpoint_url, stack, profile, region)
        seen: dict[str, ExecutionView] = {}
        try:
            with Live(console=console, refresh_per_second=4) as live:
                while True:
                    for v in operate.executions(d, status="RUNNING", limit=200):
                        seen[v.arn] = v
                    for arn, v in list(seen.items()):
                        if v.status == "RUNNING":
                            seen[arn] = view(d.sfn, arn)
                    running = sum(v.status == "RUNNING" for v in seen.values())
                    live.update(_table(list(seen.values()), f"watching: {running} running"))
                    if not running:
                        break
                    time.sleep(interval)
        except KeyboardInterrupt:
            console.print("stopped watching (executions go on)")

    @app.command()
    def show(
        execution: Annotated[str, typer.Argument(help="Execution name or ARN, or a file key.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        endpoint_url: Endpoint = None,
        stack: Stack = None,
        profile: Profile = None,
        region: Region = None,
    ) -> None:
        """One execution as a timeline: states, durations, attempts, errors, locations."""
        d = _connect(endpoint_url, stack, profile, region)
        try:
            tl = operate.timeline(d, operate.resolve(d, execution))
        except operate.OperateError as exc:
            raise _fail(exc) from exc
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
            }
            for s in tl.states
        ]
        document = {
            **_row(e),
            "arn": e.arn,
            "input": tl.input,
            "output": e.output,
            "cause": e.cause,
            "states": states,
            "consoleUrl": tl.console_url,
        }
        if as_json:
            print(json.dumps(document, indent=2, default=str))
            return
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
                str(s.attempts) if s.attempts else "",
                ", ".join(s.errors),
                " ".join(x for x in (s.batch_job_id, s.log_stream) if x),
            )
        console.print(table)
        source = tl.input.get("source", {})
        console.print(f"input:  s3://{source.get('bucket')}/{source.get('key')}", soft_wrap=True)
        if e.output:
            target = e.output.get("output", {})
            for key in target.get("keys", {}).values():
                console.print(f"output: s3://{target.get('bucket')}/{key}", soft_wrap=True)
        if e.error:
            console.print(f"[red]error:[/] {e.error}")
            console.print(f"cause:  {_readable_cause(e.cause)}", soft_wrap=True)
        if tl.console_url:
            console.print(f"console: {tl.console_url}", soft_wrap=True)

    @app.command()
    def rerun(
        executions: Annotated[
            list[str] | None, typer.Argument(help="Execution names/ARNs or file keys.")
        ] = None,
        failed: Annotated[bool, typer.Option("--failed", help="Every failed execution.")] = False,
        since: Annotated[
            str | None, typer.Option(help="With --failed: newer than, e.g. 2h.")
        ] = None,
        force: Annotated[bool, typer.Option(help="Rerun even permanent failures.")] = False,
        rate: Annotated[float, typer.Option(help="Reruns per second at most.")] = 5.0,
        endpoint_url: Endpoint = None,
        stack: Stack = None,
        profile: Profile = None,
        region: Region = None,
    ) -> None:
        """Redrive failed executions (AWS), or restart them with the same input."""
        if not executions and not failed:
            raise _fail(ValueError("name executions or pass --failed"))
        d = _connect(endpoint_url, stack, profile, region)
        try:
            if failed:
                arns = [
                    v.arn
                    for v in operate.executions(
                        d, status="FAILED", since=operate.parse_since(since), limit=10_000
                    )
                ]
            else:
                arns = [operate.resolve(d, x) for x in executions or []]
            results = operate.rerun(d, arns, force=force, per_second=rate)
        except operate.OperateError as exc:
            raise _fail(exc) from exc
        for r in results:
            style = {"redriven": "green", "restarted": "green", "skipped": "cyan"}.get(
                r.action, "yellow"
            )
            console.print(f"[{style}]{r.action:9}[/] {r.execution}: {r.reason}", soft_wrap=True)
        if any(r.action == "refused" for r in results):
            raise typer.Exit(EXIT_FAILED)

    @app.command()
    def requeue(
        key: Annotated[str | None, typer.Argument(help="Quarantined file key.")] = None,
        everything: Annotated[bool, typer.Option("--all", help="Every quarantined file.")] = False,
        since: Annotated[str | None, typer.Option(help="With --all: newer than, e.g. 2h.")] = None,
        endpoint_url: Endpoint = None,
        stack: Stack = None,
        profile: Profile = None,
        region: Region = None,
    ) -> None:
        """Move quarantined files back to staging (after fixing them or their contract)."""
        d = _connect(endpoint_url, stack, profile, region)
        try:
            moved = operate.requeue(d, key, everything=everything, since=operate.parse_since(since))
        except operate.OperateError as exc:
            raise _fail(exc) from exc
        for m in moved:
            source = f"s3://{d.quarantine_bucket}/{m.key}"
            console.print(
                f"requeued {source} -> s3://{d.staging_bucket}/{m.key} ({m.size} bytes)",
                soft_wrap=True,
            )
        if not moved:
            console.print("nothing to requeue")


def register_upload(app: typer.Typer) -> None:
    from pathlib import Path

    @app.command()
    def upload(
        paths: Annotated[list[str], typer.Argument(help="Files or directories to upload.")],
        prefix: Annotated[str, typer.Option(help="Key prefix in the staging bucket.")] = "",
        wait: Annotated[
            bool, typer.Option(help="Follow each file's execution to its end.")
        ] = False,
        part_size_mb: Annotated[int, typer.Option(help="Multipart part size, MiB (>= 5).")] = 8,
        concurrency: Annotated[int, typer.Option(help="Parts in flight per file.")] = 4,
        timeout: Annotated[float, typer.Option(help="With --wait: seconds to wait.")] = 3600,
        endpoint_url: Endpoint = None,
        stack: Stack = None,
        profile: Profile = None,
        region: Region = None,
    ) -> None:
        """Multipart upload to staging, verified by S3 and resumable; --wait shows outcomes."""
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        from chute.ops.run import FileResult, RunError, Uploaded, collect_files, wait_for_executions
        from chute.ops.upload import upload_file

        try:
            files = collect_files(paths)
        except RunError as exc:
            raise _fail(exc) from exc
        d = _connect(endpoint_url, stack, profile, region)
        uploaded = []
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=not console.is_terminal) as bars:
            total = bars.add_task("all files", total=sum(f.path.stat().st_size for f in files))
            for item in files:
                key = f"{prefix}{item.key}"
                task = bars.add_task(key, total=item.path.stat().st_size)

                def advance(n: int, task: Any = task) -> None:
                    bars.advance(task, n)
                    bars.advance(total, n)

                result = upload_file(
                    d.s3,
                    Path(item.path),
                    d.staging_bucket,
                    key,
                    part_size=part_size_mb * 1024 * 1024,
                    concurrency=concurrency,
                    progress=advance,
                )
                uploaded.append((item, result))
        for _, r in uploaded:
            how = (
                f"resumed: sent {r.parts_sent} of {r.parts} parts"
                if r.resumed
                else f"{r.parts} parts"
            )
            console.print(
                f"uploaded s3://{d.staging_bucket}/{r.key} ({r.size} bytes, {how})", soft_wrap=True
            )
        if not wait:
            return
        results = [
            FileResult(Uploaded(item.__class__(item.path, r.key), r.etag)) for item, r in uploaded
        ]
        finished = wait_for_executions(d.sfn, d.state_machine_arn, results, timeout_seconds=timeout)
        for fr in results:
            ex = fr.execution
            console.print(
                f"{fr.key}: {fr.outcome}" + (f" ({ex.error})" if ex and ex.error else ""),
                soft_wrap=True,
            )
        if not finished:
            raise typer.Exit(EXIT_FAILED)
        if any(fr.outcome != "SUCCEEDED" for fr in results):
            raise typer.Exit(EXIT_FAILED)


def register_grant(app: typer.Typer) -> None:
    @app.command()
    def grant(
        name: Annotated[str, typer.Argument(help="The client's file name (sanitised).")],
        tenant: Annotated[str, typer.Option(help="Tenant: the key's first segment.")] = "cli",
        put: Annotated[bool, typer.Option("--put", help="A presigned PUT (the default).")] = False,
        post: Annotated[bool, typer.Option("--post", help="A presigned POST (browser form).")] = (
            False
        ),
        credentials: Annotated[
            bool,
            typer.Option("--credentials", help="Credentials scoped to the key (multipart)."),
        ] = False,
        content_type: Annotated[
            str | None, typer.Option(help="Content-Type S3 requires (default: by extension).")
        ] = None,
        size: Annotated[
            int | None, typer.Option(help="The file's size: refused early if over the limits.")
        ] = None,
        expires: Annotated[
            int, typer.Option(help="Seconds a PUT/POST grant is valid (at most 3600).")
        ] = names.DEFAULT_GRANT_EXPIRES_SECONDS,
        endpoint_url: Endpoint = None,
        stack: Stack = None,
        profile: Profile = None,
        region: Region = None,
    ) -> None:
        """Mint an upload grant for exactly one server-chosen key; prints JSON.

        The same rules as the grant API, signed with your own credentials."""
        from tasks.grant.domain import GrantError, GrantRequest, Kind, mint
        from tasks.settings import GrantSettings, SettingsError

        options: tuple[tuple[Kind, bool], ...] = (
            ("put", put),
            ("post", post),
            ("credentials", credentials),
        )
        chosen = [kind for kind, on in options if on]
        if len(chosen) > 1:
            raise _fail(ValueError("choose one of --put, --post, --credentials"))
        d = _connect(endpoint_url, stack, profile, region)
        try:
            settings = GrantSettings.from_mapping(
                {
                    names.ENV_STAGING_BUCKET: d.staging_bucket,
                    names.ENV_UPLOAD_ROLE_ARN: d.upload_role_arn or "",
                    names.ENV_GRANT_EXPIRES_SECONDS: str(expires),
                }
            )
            request = GrantRequest(
                name=name, kind=chosen[0] if chosen else "put", content_type=content_type, size=size
            )
            document = mint(request, tenant, settings, d.signer())
        except (GrantError, SettingsError) as exc:
            raise _fail(exc) from exc
        print(json.dumps(document, indent=2, default=str))
