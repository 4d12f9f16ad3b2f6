"""Turn S3 event notifications (delivered through SQS) into Step Functions executions.

S3 delivers events at least once, late and unordered, so every execution gets a deterministic name
derived from the object version (:func:`execution_name`): a redelivered event maps to the same
name and Step Functions refuses to start it twice. Note that for a Standard workflow a repeated
StartExecution with the same name *and input* while the first execution is still RUNNING succeeds
(returns the original execution) instead of raising ExecutionAlreadyExists; both mean "handled".

An SQS message fails as a whole (and is redelivered, then dead-lettered) when its body can't be
parsed or any start inside it fails; nothing is ever dropped without a log line.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import unquote_plus

from tasks import log
from tasks.formats import keys
from tasks.models import ModelError, ObjectRef
from tasks.settings import TriggerSettings

MAX_NAME_LENGTH = 80  # Step Functions' limit for execution names
HASH_LENGTH = 32  # hex chars of sha256: 128 bits
_SLUG_LENGTH = MAX_NAME_LENGTH - HASH_LENGTH - 1
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_TEST_EVENT = "s3:TestEvent"
_CREATED = "ObjectCreated:"

Status = Literal["started", "duplicate", "ignored", "failed"]


class Starter(Protocol):
    """Starts a named execution; returns "exists" when the name was already used."""

    def start(self, name: str, payload: dict[str, Any]) -> Literal["started", "exists"]: ...


@dataclass(frozen=True)
class Outcome:
    """What happened to one S3 record (or to a whole SQS body that couldn't be read)."""

    status: Status
    reason: str = ""
    bucket: str | None = None
    key: str | None = None
    execution: str | None = None


def execution_name(ref: ObjectRef) -> str:
    """``<slug of the file name>-<32 hex chars>``: <= 80 chars of ``[A-Za-z0-9_-]``, starting with
    an alphanumeric. The hash covers bucket, key, versionId (or eTag) and sequencer, so the same
    event always gets the same name and another version or upload of the key gets another one."""
    identity = json.dumps(
        [ref.bucket, ref.key, ref.version_id or ref.etag or "", ref.sequencer or ""],
        ensure_ascii=True,
    )
    digest = hashlib.sha256(identity.encode("ascii")).hexdigest()[:HASH_LENGTH]
    return f"{_slug(ref.key)}-{digest}"


def _slug(key: str) -> str:
    """The file name, transliterated to ASCII, unsafe runs replaced by "-", truncated."""
    filename = key.rsplit("/", 1)[-1]
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    slug = _UNSAFE.sub("-", ascii_name).strip("-_")[:_SLUG_LENGTH].rstrip("-_")
    return slug or "object"


def process_batch(
    records: Iterable[Mapping[str, Any]], starter: Starter, settings: TriggerSettings
) -> list[str]:
    """Handle every SQS record; return the messageIds to report as batch item failures."""
    failed: list[str] = []
    for record in records:
        message_id = record.get("messageId")
        if not isinstance(message_id, str) or not message_id:
            # Without an id the failure can't be reported per item: fail the whole invocation so
            # the batch is redelivered (starts already done are idempotent).
            raise ModelError("SQS record without a messageId")
        outcomes = handle_message(record.get("body"), starter, settings)
        for outcome in outcomes:
            _log(message_id, outcome)
        if any(o.status == "failed" for o in outcomes):
            failed.append(message_id)
    return failed


def handle_message(body: object, starter: Starter, settings: TriggerSettings) -> list[Outcome]:
    """Every S3 record of one SQS body; never raises (a failure is an Outcome)."""
    try:
        document = _parse_body(body)
    except ValueError as exc:
        return [Outcome("failed", reason=str(exc))]
    if document.get("Event") == _TEST_EVENT:
        return [Outcome("ignored", reason=_TEST_EVENT)]
    records = document.get("Records")
    if not isinstance(records, list):
        return [Outcome("failed", reason="message body is not an S3 event (no Records list)")]
    if not records:
        return [Outcome("ignored", reason="S3 event without records")]
    return [_handle_record(record, starter, settings) for record in records]


def _parse_body(body: object) -> dict[str, Any]:
    if not isinstance(body, str):
        raise ValueError("message body is missing or not a string")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"message body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ValueError("message body is not a JSON object")
    return document


def _handle_record(record: object, starter: Starter, settings: TriggerSettings) -> Outcome:
    try:
        ref_or_reason = object_ref(record, settings)
    except ModelError as exc:
        return Outcome("failed", reason=f"malformed S3 record: {exc}")
    if isinstance(ref_or_reason, Outcome):
        return ref_or_reason
    ref = ref_or_reason
    name = execution_name(ref)
    try:
        result = starter.start(name, {"source": ref.to_dict()})
    except Exception as exc:  # any failure must reach the DLQ, never vanish
        return Outcome(
            "failed",
            reason=f"StartExecution failed: {type(exc).__name__}: {exc}",
            bucket=ref.bucket,
            key=ref.key,
            execution=name,
        )
    status: Status = "started" if result == "started" else "duplicate"
    return Outcome(status, bucket=ref.bucket, key=ref.key, execution=name)


def object_ref(record: object, settings: TriggerSettings) -> ObjectRef | Outcome:
    """The ObjectRef an S3 record announces, or an "ignored" Outcome saying why it is skipped.

    Raises ModelError when the record doesn't have the shape of an S3 event record.
    """
    if not isinstance(record, dict):
        raise ModelError("record is not an object")
    event_name = str(record.get("eventName", "")).removeprefix("s3:")
    s3 = record.get("s3")
    obj = s3.get("object") if isinstance(s3, dict) else None
    bucket = s3.get("bucket") if isinstance(s3, dict) else None
    if not isinstance(obj, dict) or not isinstance(bucket, dict):
        raise ModelError("record has no s3.bucket / s3.object")
    raw_key = obj.get("key")
    if not isinstance(raw_key, str) or not raw_key:
        raise ModelError("record has no s3.object.key")
    key = unquote_plus(raw_key)  # S3 form-encodes keys: "+" is a space, "%2B" a plus
    bucket_name = bucket.get("name")

    def ignored(reason: str) -> Outcome:
        name = bucket_name if isinstance(bucket_name, str) else None
        return Outcome("ignored", reason=reason, bucket=name, key=key)

    if not event_name.startswith(_CREATED):
        return ignored(f"event {event_name or '(none)'} is not ObjectCreated")
    if keys.is_folder_marker(key):
        return ignored("folder marker")
    if not key.startswith(settings.prefix):
        return ignored(f"key is outside prefix {settings.prefix!r}")
    if not keys.matches_suffix(key, settings.suffixes):
        return ignored(f"suffix not in {', '.join(settings.suffixes)}")
    return ObjectRef.from_dict(
        {
            "bucket": bucket_name,
            "key": key,
            "size": obj.get("size"),
            "eTag": obj.get("eTag"),
            "versionId": obj.get("versionId"),
            "sequencer": obj.get("sequencer"),
            "uploaded": record.get("eventTime")
            if isinstance(record.get("eventTime"), str)
            else None,
        }
    )


def _log(message_id: str, outcome: Outcome) -> None:
    fields = {
        "message_id": message_id,
        "bucket": outcome.bucket,
        "key": outcome.key,
        "execution": outcome.execution,
    }
    if outcome.status == "started":
        log.info("execution started", **fields)
    elif outcome.status == "duplicate":
        log.info("execution already exists", **fields)
    elif outcome.status == "ignored":
        log.info("record ignored", reason=outcome.reason, **fields)
    else:
        log.error("record failed", reason=outcome.reason, **fields)
