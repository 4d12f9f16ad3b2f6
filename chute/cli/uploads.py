"""Getting files in (upload, grant): parsing and presentation over chute.ops.upload and the grant
domain, each over the one ``Deployment`` of its target options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from chute.cli.console import console, err
from chute.cli.options import TARGET, Exit, Target, fail, with_target
from tasks import names

if TYPE_CHECKING:
    from chute.ops.deployment import Deployment
    from chute.ops.run import LocalFile
    from chute.ops.upload import UploadResult

app = typer.Typer()


@app.command()
@with_target
def upload(
    paths: Annotated[list[str], typer.Argument(help="Files or directories to upload.")],
    prefix: Annotated[str, typer.Option(help="Key prefix in the staging bucket.")] = "",
    wait: Annotated[bool, typer.Option(help="Follow each file's execution to its end.")] = False,
    part_size_mb: Annotated[int, typer.Option(help="Multipart part size, MiB (>= 5).")] = 8,
    concurrency: Annotated[int, typer.Option(help="Parts in flight per file.")] = 4,
    timeout: Annotated[float, typer.Option(help="With --wait: seconds to wait.")] = 3600,
    target: Target = TARGET,
) -> None:
    """Multipart upload to staging, verified by S3 and resumable; --wait shows outcomes."""
    from chute.ops.run import RunError, collect_files
    from tasks.formats.keys import matches_suffix

    try:
        files = collect_files(paths)
    except RunError as exc:
        raise fail(exc) from exc
    skipped = [f for f in files if not matches_suffix(f.key, names.DEFAULT_SUFFIXES)]
    for f in skipped:
        err.print(
            f"IGNORED {f.path}: not a processed extension ({', '.join(names.DEFAULT_SUFFIXES)});"
            " not uploaded (the pipeline would leave it in staging untouched)",
            soft_wrap=True,
        )
    files = [f for f in files if f not in skipped]
    if not files:
        raise fail(
            ValueError(
                "nothing to upload: no file has an extension the pipeline processes; export"
                " the data as CSV/TSV (optionally .gz/.zst/.bz2) and upload that"
            )
        )
    d = target.connect()
    uploaded = _upload_all(d, files, prefix, part_size_mb * 1024 * 1024, concurrency)
    for _, r in uploaded:
        how = (
            f"resumed: sent {r.parts_sent} of {r.parts} parts" if r.resumed else f"{r.parts} parts"
        )
        console.print(
            f"uploaded s3://{d.staging_bucket}/{r.key} ({r.size} bytes, {how})", soft_wrap=True
        )
    if wait:
        _wait_for_outcomes(d, uploaded, timeout)
    if skipped:
        raise typer.Exit(Exit.FAILED)


def _upload_all(
    d: Deployment, files: list[LocalFile], prefix: str, part_size: int, concurrency: int
) -> list[tuple[LocalFile, UploadResult]]:
    """Upload each file with a progress bar (and one for all); Ctrl-C says how to resume."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from chute.ops.upload import upload_file

    uploaded: list[tuple[LocalFile, UploadResult]] = []
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

            try:
                result = upload_file(
                    d.s3,
                    Path(item.path),
                    d.staging_bucket,
                    key,
                    part_size=part_size,
                    concurrency=concurrency,
                    progress=advance,
                )
            except KeyboardInterrupt:
                bars.stop()
                err.print(
                    f"interrupted while uploading {key}: {len(uploaded)} of {len(files)} file(s)"
                    " complete. Run the same `chute upload` again to resume: parts already sent"
                    " are not sent again."
                )
                raise typer.Exit(130) from None
            uploaded.append((item, result))
    return uploaded


def _wait_for_outcomes(
    d: Deployment, uploaded: list[tuple[LocalFile, UploadResult]], timeout: float
) -> None:
    """Follow each uploaded file's execution to its end and print its outcome (exit 1 unless
    every one SUCCEEDED)."""
    from chute.ops.run import FileResult, Uploaded, wait_for_executions

    results = [
        FileResult(Uploaded(item.__class__(item.path, r.key), r.etag)) for item, r in uploaded
    ]
    last = [-1]

    def report(current: list[FileResult]) -> None:
        done = sum(1 for r in current if r.execution and r.execution.outcome != "RUNNING")
        if done != last[0]:
            err.print(f"waiting: {done} of {len(current)} file(s) finished")
            last[0] = done

    finished = wait_for_executions(
        d.sfn, d.state_machine_arn, results, timeout_seconds=timeout, on_progress=report
    )
    for fr in results:
        ex = fr.execution
        why = f" ({ex.error}: {_message(ex.cause)})" if ex and ex.error else ""
        console.print(f"{fr.key}: {fr.outcome}{why}", soft_wrap=True)
        if ex and ex.outcome == "QUARANTINED":
            console.print(
                f"  fix it, then: chute requeue {fr.key} --file FIXED   (the bad row: chute show"
                f" {fr.key})",
                soft_wrap=True,
            )
    if not finished or any(fr.outcome != "SUCCEEDED" for fr in results):
        raise typer.Exit(Exit.FAILED)


@app.command()
@with_target
def grant(
    name: Annotated[str, typer.Argument(help="The client's file name (sanitised).")],
    tenant: Annotated[str, typer.Option(help="Tenant: the key's first segment (required).")],
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
    target: Target = TARGET,
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
        raise fail(ValueError("choose one of --put, --post, --credentials"))
    d = target.connect()
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
        raise fail(exc) from exc
    print(json.dumps(document, indent=2, default=str))


def _message(cause: str | None, limit: int = 300) -> str:
    """A failure's message from its cause (a Lambda error's ``errorMessage``), shortened."""
    from chute.ops.executions import message_of

    text = message_of(cause) or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
