"""What the console shows and does, over the one :class:`chute.ops.deployment.Deployment` and
the operate functions the CLI uses (``chute.ops.operate``, ``chute.ops.executions``): the same
reads and the same rerun/requeue rules, whether the deployment is the embedded runtime or an
AWS stack.

What the console adds is presentation and a cache: a finished execution never changes, so its
view is read once (DescribeExecution + GetExecutionHistory) and kept; running ones are re-read
at most every ``running_ttl`` seconds. Paging through thousands of executions is then one
ListExecutions pass plus the views of executions not seen before.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chute.ops import operate, upload
from chute.ops.deployment import Deployment
from chute.ops.events import CompletionEvent, read_events
from chute.ops.executions import ExecutionView, source_of, view
from chute.web import graph, metrics, s3_links
from chute.web.failures import Failure, read_failure
from chute.web.metrics import Glance
from chute.web.s3_links import S3Links
from tasks import names
from tasks.quarantine.domain import public_cause
from tasks.workflow import ExitCode, Outcome

STATUSES = ("running", "succeeded", "quarantined", "failed", "stale", "replaced", "ignored")
"""The statuses of a file in the list: the execution outcomes, and ``ignored`` for a staged
file no execution was started for (its suffix or prefix is not the trigger's)."""

_SFN_STATUS = {"running": "RUNNING", "succeeded": "SUCCEEDED"}
MULTIPART_THRESHOLD = 64 * 1024 * 1024  # bytes: larger browser uploads go in parts
PART_SIZE = 16 * 1024 * 1024


class ConsoleError(Exception):
    """A request the console can't meet; the message is shown to the user."""


@dataclass(frozen=True)
class Filters:
    status: str | None = None
    key_prefix: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class Row:
    """One line of the list: a file and its (latest known) execution."""

    key: str
    status: str
    size: int | None
    route: str | None
    started: datetime | None
    seconds: float | None
    error: str | None
    execution: str | None  # name (None: an ignored file)
    arn: str | None


@dataclass
class Listing:
    rows: list[Row]
    counts: dict[str, int]
    total: int  # rows matching the filters
    page: int
    pages: int


@dataclass
class Detail:
    execution: ExecutionView
    timeline: operate.Timeline
    drawing: graph.Drawing
    records: dict[str, graph.StateRecord]
    events: list[dict[str, Any]]
    batch: dict[str, Any] | None
    failure: Failure | None
    console_url: str | None
    announced: list[CompletionEvent] = field(default_factory=list)
    """The completion events of this execution on the bus (docs/events.md)."""


class ConsoleData:
    def __init__(
        self,
        deployment: Deployment,
        *,
        running_ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.d = deployment
        self._views: dict[str, tuple[float, ExecutionView]] = {}
        self._lock = threading.Lock()
        self._ttl = running_ttl
        self._clock = clock
        self._definitions: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, str] = {}
        self._listing = threading.Lock()
        self.links = S3Links(deployment)
        self.multipart_threshold = MULTIPART_THRESHOLD
        self.part_size = PART_SIZE

    # --- executions ------------------------------------------------------------------------
    def view(self, arn: str) -> ExecutionView:
        with self._lock:
            cached = self._views.get(arn)
        if cached is not None:
            read_at, found = cached
            if found.status != "RUNNING" or self._clock() - read_at < self._ttl:
                return found
        fresh = view(self.d.sfn, arn)
        with self._lock:
            self._views[arn] = (self._clock(), fresh)
        return fresh

    def listing(self, filters: Filters, page: int = 1, per_page: int = 50) -> Listing:
        """One page of files, and the counts per status under the filters.

        A file counts once, by its latest execution (a file quarantined, then fixed and
        requeued to success, is a succeeded file). Cheap where it can be: each execution's input
        is read once (its key); RUNNING and SUCCEEDED come from ListExecutions itself; only
        executions that ended otherwise are read to tell quarantined, failed and stale apart;
        rows are read for the page shown. Listings run one at a time, so concurrent refreshes
        share the cache instead of racing.
        """
        if filters.status is not None and filters.status not in STATUSES:
            raise ConsoleError(f"unknown status {filters.status!r} (one of {', '.join(STATUSES)})")
        with self._listing:
            counts: Counter[str] = Counter()
            matched: list[str | Row] = []  # an execution ARN, or an ignored file's row
            files: set[str] = set()
            for item in operate.list_executions(self.d, None):
                if filters.since is not None and item["startDate"] < filters.since:
                    break  # newest first
                arn = item["executionArn"]
                key = self._key(arn) or arn
                if key in files:
                    continue  # an earlier execution of a file already counted
                files.add(key)
                if filters.key_prefix and not key.startswith(filters.key_prefix):
                    continue
                status = self._outcome(arn, item["status"])
                counts[status] += 1
                if filters.status is None or filters.status == status:
                    matched.append(arn)
            for obj in self._ignored(filters):
                counts["ignored"] += 1
                if filters.status in (None, "ignored"):
                    matched.append(obj)
            pages = max(1, -(-len(matched) // per_page))
            page = min(max(1, page), pages)
            start = (page - 1) * per_page
            rows = [
                x if isinstance(x, Row) else _row(self.view(x))
                for x in matched[start : start + per_page]
            ]
        return Listing(
            rows=rows,
            counts={s: counts.get(s, 0) for s in STATUSES},
            total=len(matched),
            page=page,
            pages=pages,
        )

    def _outcome(self, arn: str, sfn_status: str) -> str:
        if sfn_status in ("RUNNING", "SUCCEEDED"):
            return sfn_status.lower()  # the outcome is the status
        return self.view(arn).outcome.lower()

    def _key(self, arn: str) -> str:
        """The file key of an execution (its input, which never changes), read once."""
        with self._lock:
            cached = self._views.get(arn)
            known = self._keys.get(arn)
        if cached is not None:
            return cached[1].key or ""
        if known is None:
            described = self.d.sfn.describe_execution(executionArn=arn)
            known = str(source_of(described.get("input")).get("key") or "")
            with self._lock:
                self._keys[arn] = known
        return known

    def _ignored(self, filters: Filters) -> list[Row]:
        """Staged files the trigger skips (a suffix it does not process): no execution is ever
        started for them."""
        return [
            Row(f.key, "ignored", f.size, None, f.modified, None, f.reason, None, None)
            for f in operate.ignored_files(
                self.d, key_prefix=filters.key_prefix, since=filters.since
            )
        ]

    def resolve(self, name: str) -> str:
        try:
            return operate.resolve(self.d, name)
        except operate.OperateError as exc:
            raise ConsoleError(str(exc)) from exc

    # --- one execution ---------------------------------------------------------------------
    def definition(self, arn: str) -> dict[str, Any]:
        """The definition the execution ran with (DescribeStateMachineForExecution: the deployed
        one, even after a later deployment changed it), parsed once per distinct text."""
        described = self.d.sfn.describe_state_machine_for_execution(executionArn=arn)
        text = described["definition"]
        with self._lock:
            parsed = self._definitions.get(text)
        if parsed is None:
            parsed = json.loads(text)
            with self._lock:
                self._definitions[text] = parsed
        return parsed

    def detail(self, arn: str) -> Detail:
        try:
            timeline = operate.timeline(self.d, arn)
        except operate.OperateError as exc:
            raise ConsoleError(str(exc)) from exc
        current = timeline.execution
        definition = self.definition(arn)
        records = graph.records(definition, timeline.events, current.status)
        batch = _batch(timeline)
        failure = None
        if current.outcome in (
            Outcome.QUARANTINED,
            Outcome.FAILED,
            Outcome.STALE,
            Outcome.REPLACED,
        ):
            failure = read_failure(self.d, self.links, current)
        return Detail(
            execution=current,
            timeline=timeline,
            drawing=graph.layout(definition, records),
            records=records,
            events=timeline.events,
            batch=batch,
            failure=failure,
            console_url=timeline.console_url,
            announced=read_events(self.d, execution=arn),
        )

    # --- actions ---------------------------------------------------------------------------
    def rerun(self, arn: str, *, force: bool) -> operate.RerunResult:
        result = operate.rerun(self.d, [arn], force=force)[0]
        self.forget(arn)
        return result

    def requeue(self, key: str) -> list[operate.Requeued]:
        try:
            return operate.requeue(self.d, key)
        except operate.OperateError as exc:
            raise ConsoleError(str(exc)) from exc

    def forget(self, arn: str) -> None:
        with self._lock:
            self._views.pop(arn, None)

    def upload_grant(self, name: str, size: int | None, content_type: str | None) -> dict[str, Any]:
        """An upload of one new object in staging, minted by the same rules as the grant API and
        ``chute grant`` (server-chosen key under ``console/``, size and suffix checks): a
        presigned PUT, or from ``multipart_threshold`` bytes on a multipart upload the console
        starts, with one presigned URL per part (the console completes it: :meth:`complete`)."""
        from tasks.grant.domain import GrantError, GrantRequest, mint
        from tasks.settings import GrantSettings, SettingsError

        multipart = size is not None and size >= self.multipart_threshold
        try:
            settings = GrantSettings.from_mapping(
                {
                    names.ENV_STAGING_BUCKET: self.d.staging_bucket,
                    names.ENV_UPLOAD_ROLE_ARN: self.d.upload_role_arn or "",
                    names.ENV_GRANT_EXPIRES_SECONDS: str(s3_links.LINK_SECONDS),
                }
            )
            request = GrantRequest(
                name=name, kind="put", content_type=content_type, size=None if multipart else size
            )
            grant = mint(request, "console", settings, self.d.signer())
        except (GrantError, SettingsError) as exc:
            raise ConsoleError(str(exc)) from exc
        if not multipart or size is None:
            return grant
        if size > settings.max_file_bytes:
            raise ConsoleError(
                f"{size} bytes is over the maximum file size of {settings.max_file_bytes}"
            )
        started = upload.start_presigned(
            self.d.s3,
            self.links.presign,
            grant["bucket"],
            grant["key"],
            content_type=grant["headers"]["Content-Type"],
            size=size,
            part_size=self.part_size,
        )
        return {"kind": "multipart", **started, "expiresIn": s3_links.LINK_SECONDS}

    def complete(self, key: str, upload_id: str) -> dict[str, Any]:
        """Complete a console multipart upload with the parts S3 holds (ListParts: the browser
        need not read ETags, which cross-origin responses may not expose)."""
        if not key.startswith("console/"):
            raise ConsoleError("only the console's own uploads are completed here")
        try:
            count = upload.complete_listed(self.d.s3, self.d.staging_bucket, key, upload_id)
        except upload.NothingUploaded as exc:
            raise ConsoleError(str(exc)) from exc
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchUpload", "InvalidPart", "EntityTooSmall"):
                why = exc.response["Error"].get("Message", "")
                raise ConsoleError(f"upload not completed: {why}") from exc
            raise
        return {"key": key, "parts": count}

    # --- at a glance -----------------------------------------------------------------------
    def glance(self, hours: int = 3, minutes: int = 30, now: datetime | None = None) -> Glance:
        if self.d.on_aws:
            return metrics.from_cloudwatch(self.d, hours=hours, minutes=minutes, now=now)
        return metrics.from_executions(self.d, self.view, hours=hours, minutes=minutes, now=now)


def _row(v: ExecutionView) -> Row:
    return Row(
        key=v.key or "(no key)",
        status=v.outcome.lower(),
        size=v.size,
        route=v.route,
        started=v.started,
        seconds=v.duration_seconds,
        error=v.error,
        execution=v.name,
        arn=v.arn,
    )


def _batch(timeline: operate.Timeline) -> dict[str, Any] | None:
    """The Batch job of the Batch route: id, log stream, and its attempts and exit codes (from
    the job description the workflow received, kept as the quarantine report keeps it)."""
    runs = [s for s in timeline.states if s.batch_job_id]
    if not runs:
        return None
    run = runs[-1]
    summary: dict[str, Any] = {"jobId": run.batch_job_id, "logStream": run.log_stream}
    for event in timeline.events:
        for key in ("taskSucceededEventDetails", "taskFailedEventDetails"):
            details = event.get(key)
            if not isinstance(details, dict) or details.get("resourceType") != "batch":
                continue
            document = details.get("output") or details.get("cause") or ""
            try:
                parsed = json.loads(public_cause(document))
            except (ValueError, TypeError):
                continue
            if isinstance(parsed, dict):
                summary.update({k: v for k, v in parsed.items() if v is not None})
    summary["jobId"] = summary.get("jobId") or run.batch_job_id
    summary["logStream"] = summary.pop("logStreamName", None) or summary.get("logStream")
    for name in ("createdAt", "startedAt", "stoppedAt"):
        if isinstance(summary.get(name), int):  # epoch milliseconds
            stamp = datetime.fromtimestamp(summary[name] / 1000, UTC)
            summary[name] = stamp.isoformat(timespec="milliseconds")
    code = summary.get("exitCode")
    if isinstance(code, int) and code in set(ExitCode):
        summary["exitCode"] = f"{code}: {ExitCode(code).meaning}"
    return summary


def reachable(d: Deployment) -> str | None:
    """None when the deployment answers, else why not (shown on the page)."""
    try:
        d.sfn.describe_state_machine(stateMachineArn=d.state_machine_arn)
    except (BotoCoreError, ClientError) as exc:
        return str(exc)
    return None
