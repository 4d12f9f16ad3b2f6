"""The console's account of a failure: why an execution did not succeed, from its error and
cause, the quarantine report, and the original file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chute.ops.deployment import Deployment
from chute.ops.executions import ExecutionView, message_of
from chute.web.s3_links import S3Links
from tasks.formats import keys
from tasks.quarantine.domain import public_cause
from tasks.workflow import Outcome

PREVIEW_ROWS = 12
_ROW = re.compile(r"\brow (\d+)\b")


@dataclass
class Failure:
    """Why an execution did not succeed: the quarantine report and the original's first rows."""

    error: str | None
    message: str | None
    cause: str | None
    report: dict[str, Any] | None
    problems: list[dict[str, Any]]
    bad_rows: set[int]
    preview: list[tuple[int, list[str]]]  # (file row, 1 = header; the cells)
    preview_note: str | None
    links: dict[str, str]  # label -> URL


def read_failure(d: Deployment, links_to: S3Links, current: ExecutionView) -> Failure:
    """Why an execution did not succeed, as the page shows it: the error and message (the
    quarantine report's, when there is one), contract problems, the bad rows, a preview of the
    original around them, and presigned links."""
    message = message_of(current.cause)
    report = None
    links: dict[str, str] = {}
    preview: list[tuple[int, list[str]]] = []
    note: str | None = None
    problems: list[dict[str, Any]] = []
    key = current.key
    if current.outcome == Outcome.QUARANTINED and key:
        report_key = keys.report_key(key)
        report = links_to.json(d.quarantine_bucket, report_key)
        if report is None:
            note = "no report in quarantine any more (requeued, or removed)"
        else:
            links["report (.error.json)"] = links_to.link(d.quarantine_bucket, report_key)
            message = report.get("message") or message
            contract = report.get("contract")
            if isinstance(contract, dict):
                problems = [p for p in contract.get("problems", []) if isinstance(p, dict)]
            if (report.get("file") or {}).get("status") == "quarantined":
                links["original"] = links_to.link(d.quarantine_bucket, key)
                preview, note = links_to.preview(d.quarantine_bucket, key)
    elif current.outcome == Outcome.FAILED and key:
        links["original (in staging)"] = links_to.link(d.staging_bucket, key)
    elif current.outcome == Outcome.REPLACED:
        note = "the original is archived; upload it again to make it the latest"
    bad_rows = {int(p["row"]) for p in problems if isinstance(p.get("row"), int)}
    for match in _ROW.finditer(message or ""):
        bad_rows.add(int(match.group(1)))
    if preview and bad_rows:
        preview = _around(preview, min(bad_rows))
    return Failure(
        error=(report or {}).get("error") or current.error,
        message=message,
        cause=public_cause(current.cause) if current.cause else None,
        report=report,
        problems=problems,
        bad_rows=bad_rows,
        preview=preview,
        preview_note=note,
        links=links,
    )


def _around(
    rows: list[tuple[int, list[str]]], bad: int, before: int = 3, after: int = 5
) -> list[tuple[int, list[str]]]:
    """The header, and the rows around the first bad one (or the first rows)."""
    header, body = rows[:1], rows[1:]
    near = [r for r in body if bad - before <= r[0] <= bad + after]
    return header + (near or body[: PREVIEW_ROWS - 1])
