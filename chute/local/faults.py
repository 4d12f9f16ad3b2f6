"""Fault injection for the embedded runtime: rehearse failures without touching AWS.

Operators pass rules to ``chute up --fault RULE`` (repeatable) or in ``CHUTE_FAULTS`` (rules
separated by ``,``); tests call :meth:`Faults.add`. Fields of a rule are separated by ``:``;
``COUNT`` (default 1) is how many times the rule fires before it is used up.

=========================================  ======================================================
rule                                       effect
=========================================  ======================================================
``s3:OPERATION:STATUS[:COUNT[:PREFIX]]``   the next COUNT S3 requests of OPERATION (``GetObject``,
                                           ``PutObject``, ``UploadPart``... or ``*`` for any) on a
                                           key starting with PREFIX (default: any key) get a real
                                           HTTP error from the endpoint: STATUS ``503``/``SlowDown``
                                           or ``500``/``InternalError``. Every client sees it:
                                           handlers, Batch jobs, the CLI, the aws CLI.
``lambda:STEP:kill[:COUNT[:OPERATION]]``   a worker of STEP (validate, convert, archive,
                                           quarantine, trigger) is killed with SIGKILL when it
                                           sends its next S3 request of OPERATION (default ``*``):
                                           mid-invocation. The workflow sees ``Runtime.ExitError``.
``lambda:STEP:error=NAME[:COUNT]``         the next COUNT invocations of STEP fail with error NAME
                                           without running (as if the handler raised NAME).
``batch:kill[:COUNT[:OPERATION]]``         a running Batch job gets SIGKILL when it sends its next
                                           S3 request of OPERATION (default ``UploadPart``: its
                                           multipart upload is left incomplete). Exit code 137.
``batch:term[:COUNT[:OPERATION]]``         the same with SIGTERM (a stop: the job aborts its
                                           uploads and exits 75, which Batch retries).
``batch:exit=CODE[:COUNT]``                the next COUNT job attempts end with exit code CODE
                                           without running.
=========================================  ======================================================

Example: ``CHUTE_FAULTS="s3:GetObject:503:3,lambda:convert:kill,batch:kill"``.

PREFIX matches object keys in any bucket; bucket-level requests (``ListObjectsV2``...) have no
key and match only rules without a PREFIX. A kill/term rule whose process never sends its
request stays armed.

A bad rule raises :class:`FaultSpecError` naming the rule and what is wrong. The S3 rules run
inside the endpoint (the ``request-filter`` hook in :mod:`chute.local.moto_patches.server`);
callers are told apart by their access key id, which the runtime sets per function
(``<prefix>-<step>``) and per Batch job (:func:`batch_access_key`).
"""

from __future__ import annotations

import re
import signal
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

ENV_FAULTS = "CHUTE_FAULTS"
BATCH_ACCESS_KEY = "chute-batch-job"
"""The prefix of the access key id the embedded runtime gives Batch job processes (how the
endpoint knows a request comes from a job)."""


def batch_access_key(job_id: str) -> str:
    """The access key id of one Batch job's processes: a signal rule signals the job whose
    request fired it, even while other jobs run."""
    return f"{BATCH_ACCESS_KEY}.{job_id}"


def _batch_job(access_key: str) -> str | None:
    """The job id in a Batch job's access key id ("" for a job without one), None for others."""
    if access_key == BATCH_ACCESS_KEY:
        return ""
    prefix = BATCH_ACCESS_KEY + "."
    return access_key[len(prefix) :] if access_key.startswith(prefix) else None


STEPS = ("validate", "convert", "archive", "quarantine", "trigger", "grant")

S3_STATUSES: Mapping[str, tuple[int, str, str]] = {
    "503": (503, "SlowDown", "Please reduce your request rate."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "internalerror": (500, "InternalError", "We encountered an internal error. Please try again."),
}
_REASONS = {503: "Slow Down", 500: "Internal Server Error"}

S3_OPERATIONS = frozenset(
    {
        "AbortMultipartUpload",
        "CompleteMultipartUpload",
        "CopyObject",
        "CreateBucket",
        "CreateMultipartUpload",
        "DeleteBucket",
        "DeleteObject",
        "DeleteObjects",
        "GetObject",
        "GetObjectTagging",
        "HeadBucket",
        "HeadObject",
        "ListBuckets",
        "ListMultipartUploads",
        "ListObjectVersions",
        "ListObjects",
        "ListObjectsV2",
        "ListParts",
        "PutObject",
        "PutObjectTagging",
        "UploadPart",
        "UploadPartCopy",
    }
)


class FaultSpecError(ValueError):
    """A fault rule that can't be understood; the message names the rule and the problem."""


# --- rules -----------------------------------------------------------------------------------
@dataclass
class Rule:
    text: str
    remaining: int
    fired: int = 0


@dataclass
class S3Fault(Rule):
    operation: str = "*"
    status: int = 503
    code: str = "SlowDown"
    message: str = ""
    prefix: str = ""

    def matches(self, operation: str, key: str) -> bool:
        return (self.operation in ("*", operation)) and key.startswith(self.prefix)


@dataclass
class ProcessSignal(Rule):
    """Signal a Lambda worker of ``step`` (or a Batch job when ``step`` is None) when it sends
    an S3 request of ``operation``."""

    step: str | None = None
    signum: int = signal.SIGKILL
    operation: str = "*"


@dataclass
class StepError(Rule):
    step: str = ""
    error: str = ""


@dataclass
class BatchExit(Rule):
    exit_code: int = 0


def _count(rule: str, value: str | None) -> int:
    if value is None or value == "":
        return 1
    if not value.isdigit() or int(value) < 1:
        raise FaultSpecError(f"fault {rule!r}: COUNT must be a positive integer, not {value!r}")
    return int(value)


def _operation(rule: str, value: str | None, default: str) -> str:
    if value is None or value == "":
        return default
    if value != "*" and value not in S3_OPERATIONS:
        known = ", ".join(sorted(S3_OPERATIONS))
        raise FaultSpecError(f"fault {rule!r}: unknown S3 operation {value!r} (one of: *, {known})")
    return value


def _too_many(rule: str, fields: list[str], allowed: int, shape: str) -> None:
    if len(fields) > allowed:
        raise FaultSpecError(f"fault {rule!r}: too many fields (expected {shape})")


_ERROR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,127}$")


def parse_rule(text: str) -> Rule:
    """One rule (see the module docstring for the syntax)."""
    rule = text.strip()
    if not rule:
        raise FaultSpecError("empty fault rule")
    target, _, rest = rule.partition(":")
    if target == "s3":
        shape = "s3:OPERATION:STATUS[:COUNT[:PREFIX]]"
        fields = rest.split(":", 3)  # the prefix may itself contain ':'
        if len(fields) < 2 or not fields[0] or not fields[1]:
            raise FaultSpecError(f"fault {rule!r}: expected {shape}")
        status = S3_STATUSES.get(fields[1].lower())
        if status is None:
            raise FaultSpecError(
                f"fault {rule!r}: STATUS must be 503 (SlowDown) or 500 (InternalError),"
                f" not {fields[1]!r}"
            )
        return S3Fault(
            text=rule,
            remaining=_count(rule, fields[2] if len(fields) > 2 else None),
            operation=_operation(rule, fields[0], "*"),
            status=status[0],
            code=status[1],
            message=status[2],
            prefix=fields[3] if len(fields) > 3 else "",
        )
    if target == "lambda":
        fields = rest.split(":")
        if len(fields) < 2 or fields[0] not in STEPS:
            raise FaultSpecError(
                f"fault {rule!r}: expected lambda:STEP:kill[:COUNT[:OPERATION]] or"
                f" lambda:STEP:error=NAME[:COUNT], STEP one of {', '.join(STEPS)}"
            )
        step, action = fields[0], fields[1]
        if action == "kill":
            _too_many(rule, fields, 4, "lambda:STEP:kill[:COUNT[:OPERATION]]")
            return ProcessSignal(
                text=rule,
                remaining=_count(rule, fields[2] if len(fields) > 2 else None),
                step=step,
                signum=signal.SIGKILL,
                operation=_operation(rule, fields[3] if len(fields) > 3 else None, "*"),
            )
        if action.startswith("error="):
            _too_many(rule, fields, 3, "lambda:STEP:error=NAME[:COUNT]")
            name = action.removeprefix("error=")
            if not _ERROR_NAME.match(name):
                raise FaultSpecError(f"fault {rule!r}: {name!r} is not an error name")
            return StepError(
                text=rule,
                remaining=_count(rule, fields[2] if len(fields) > 2 else None),
                step=step,
                error=name,
            )
        raise FaultSpecError(
            f"fault {rule!r}: unknown Lambda fault {action!r} (kill or error=NAME)"
        )
    if target == "batch":
        fields = rest.split(":")
        action = fields[0]
        if action in ("kill", "term"):
            _too_many(rule, fields, 3, f"batch:{action}[:COUNT[:OPERATION]]")
            return ProcessSignal(
                text=rule,
                remaining=_count(rule, fields[1] if len(fields) > 1 else None),
                step=None,
                signum=signal.SIGKILL if action == "kill" else signal.SIGTERM,
                operation=_operation(rule, fields[2] if len(fields) > 2 else None, "UploadPart"),
            )
        if action.startswith("exit="):
            _too_many(rule, fields, 2, "batch:exit=CODE[:COUNT]")
            code = action.removeprefix("exit=")
            if not code.isdigit() or not 0 < int(code) < 256:
                raise FaultSpecError(f"fault {rule!r}: CODE must be 1..255, not {code!r}")
            return BatchExit(
                text=rule,
                remaining=_count(rule, fields[1] if len(fields) > 1 else None),
                exit_code=int(code),
            )
        raise FaultSpecError(
            f"fault {rule!r}: unknown Batch fault {action!r} (kill, term or exit=CODE)"
        )
    raise FaultSpecError(f"fault {rule!r}: unknown target {target!r} (s3, lambda or batch)")


def parse(specs: str | Iterable[str]) -> list[Rule]:
    """Rules from ``CHUTE_FAULTS``-style text (``,``-separated) or several such texts.
    Only an S3 rule's PREFIX may contain ``:``; no field may contain ``,``."""
    texts = [specs] if isinstance(specs, str) else list(specs)
    rules: list[Rule] = []
    for text in texts:
        for part in text.split(","):
            if part.strip():
                rules.append(parse_rule(part))
    return rules


# --- which S3 operation a request is ---------------------------------------------------------
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/[^/]+/([^/]+)/")


def caller(environ: Mapping[str, Any]) -> tuple[str, str] | None:
    """(access key id, service) of a SigV4-signed request (header or presigned query)."""
    found = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    if found:
        return found.group(1), found.group(2)
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    credential = query.get("X-Amz-Credential", [""])[0].split("/")
    if len(credential) == 5:
        return credential[0], credential[3]
    return None


def s3_operation(environ: Mapping[str, Any]) -> tuple[str, str, str]:
    """(operation, bucket, key) of a path-style S3 request ("Other" when not told apart)."""
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    path = str(environ.get("PATH_INFO", "/")).lstrip("/")
    bucket, _, key = path.partition("/")
    query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    copy = "HTTP_X_AMZ_COPY_SOURCE" in environ
    if not bucket:
        return ("ListBuckets" if method == "GET" else "Other"), "", ""
    if not key:
        table = {
            "GET": (
                "ListMultipartUploads"
                if "uploads" in query
                else "ListObjectVersions"
                if "versions" in query
                else "ListObjectsV2"
                if "list-type" in query
                else "ListObjects"
                if not query
                else "Other"
            ),
            "HEAD": "HeadBucket",
            "PUT": "CreateBucket" if not query else "Other",
            "POST": "DeleteObjects" if "delete" in query else "Other",
            "DELETE": "DeleteBucket" if not query else "Other",
        }
        return table.get(method, "Other"), bucket, ""
    if method in ("GET", "HEAD"):
        if "uploadId" in query:
            operation = "ListParts"
        elif "tagging" in query:
            operation = "GetObjectTagging"
        elif method == "HEAD":
            operation = "HeadObject"
        else:
            operation = "GetObject" if not (set(query) - {"versionId", "partNumber"}) else "Other"
    elif method == "PUT":
        if "partNumber" in query and "uploadId" in query:
            operation = "UploadPartCopy" if copy else "UploadPart"
        elif "tagging" in query:
            operation = "PutObjectTagging"
        elif query:
            operation = "Other"
        else:
            operation = "CopyObject" if copy else "PutObject"
    elif method == "POST":
        if "uploads" in query:
            operation = "CreateMultipartUpload"
        elif "uploadId" in query:
            operation = "CompleteMultipartUpload"
        else:
            operation = "Other"
    elif method == "DELETE":
        operation = "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    else:
        operation = "Other"
    return operation, bucket, key


# --- the runtime side ------------------------------------------------------------------------
Answer = tuple[str, list[tuple[str, str]], bytes]
"""An HTTP answer: status line, headers, body."""
Signaller = Callable[[str | None, int, str | None], int | None]
"""(function name or None for a Batch job, signal, the Batch job's id: None or "" for any) -> pid
signalled, or None if none running."""


@dataclass
class Faults:
    """The armed rules of one embedded runtime, consulted by the endpoint and the executors."""

    function_name: Callable[[str], str] = lambda step: step
    signal_process: Signaller | None = None
    inject_step_error: Callable[[str, str, int], None] | None = None
    inject_batch_exit: Callable[[int, int], None] | None = None
    _rules: list[Rule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    log: list[str] = field(default_factory=list)
    """One line per fault fired (what, where, by whom), for tests and the operator's console."""
    on_fire: Callable[[str], None] | None = None

    def add(self, specs: str | Iterable[str]) -> list[Rule]:
        """Arm rules (parsed first: nothing is armed if one is bad)."""
        rules = parse(specs)
        for rule in rules:
            if isinstance(rule, StepError):
                if self.inject_step_error is None:
                    raise FaultSpecError(f"fault {rule.text!r}: the runtime is not started")
                self.inject_step_error(rule.step, rule.error, rule.remaining)
            elif isinstance(rule, BatchExit):
                if self.inject_batch_exit is None:
                    raise FaultSpecError(f"fault {rule.text!r}: the runtime is not started")
                self.inject_batch_exit(rule.exit_code, rule.remaining)
            else:
                with self._lock:
                    self._rules.append(rule)
        return rules

    def clear(self) -> None:
        """Disarm every S3 and signal rule (error/exit injections are consumed as they fire)."""
        with self._lock:
            self._rules.clear()

    def armed(self) -> list[Rule]:
        with self._lock:
            return [r for r in self._rules if r.remaining > 0]

    def fired(self, prefix: str = "") -> list[str]:
        with self._lock:
            return [line for line in self.log if line.startswith(prefix)]

    def _take(self, wanted: Callable[[Rule], bool]) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining > 0 and wanted(rule):
                    rule.remaining -= 1
                    rule.fired += 1
                    return rule
        return None

    def _record(self, line: str) -> None:
        with self._lock:
            self.log.append(line)
        if self.on_fire is not None:
            self.on_fire(line)

    def _signal_for(self, access_key: str, operation: str) -> None:
        if self.signal_process is None:
            return

        def wanted(rule: Rule) -> bool:
            if not isinstance(rule, ProcessSignal) or rule.operation not in ("*", operation):
                return False
            if rule.step is None:
                return _batch_job(access_key) is not None
            return access_key == self.function_name(rule.step)

        rule = self._take(wanted)
        if not isinstance(rule, ProcessSignal):
            return
        function = None if rule.step is None else self.function_name(rule.step)
        job = _batch_job(access_key) if rule.step is None else None
        pid = self.signal_process(function, rule.signum, job)
        if pid is None:  # nothing running after all: keep the rule armed
            with self._lock:
                rule.remaining += 1
                rule.fired -= 1
            return
        name = signal.Signals(rule.signum).name
        self._record(f"{rule.text}: {name} to pid {pid} at {operation} by {access_key}")

    def wsgi_filter(
        self, environ: dict[str, Any]
    ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """The HTTP answer for a request an S3 rule fails (None: let the endpoint serve it).
        Signal rules fire here too, on the request that triggers them."""
        if not any(rule.remaining > 0 for rule in self._rules):
            return None
        who = caller(environ)
        if who is None or who[1] != "s3":
            return None
        operation, bucket, key = s3_operation(environ)
        self._signal_for(who[0], operation)
        by = who[0]
        rule = self._take(lambda r: isinstance(r, S3Fault) and r.matches(operation, key))
        if not isinstance(rule, S3Fault):
            return None
        _drain(environ)
        self._record(
            f"{rule.text}: {rule.status} {rule.code} to {operation} s3://{bucket}/{key} by {by}"
        )
        request_id = uuid.uuid4().hex[:16].upper()
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{rule.code}</Code><Message>{rule.message}</Message>"
            f"<Resource>/{_xml(bucket)}/{_xml(key)}</Resource>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        if environ.get("REQUEST_METHOD") == "HEAD":
            body = b""
        headers = [
            ("Content-Type", "application/xml"),
            ("Content-Length", str(len(body))),
            ("x-amz-request-id", request_id),
        ]
        return f"{rule.status} {_REASONS[rule.status]}", headers, body


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _drain(environ: Mapping[str, Any]) -> None:
    """Read the refused request's body, so the connection stays usable for the client."""
    stream = environ.get("wsgi.input")
    length = str(environ.get("CONTENT_LENGTH") or "")
    if stream is None or not length.isdigit():
        return
    remaining = int(length)
    while remaining > 0:
        chunk = stream.read(min(remaining, 1 << 20))
        if not chunk:
            return
        remaining -= len(chunk)
