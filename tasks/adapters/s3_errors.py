"""S3 errors in the workflow's error contract: AWS errors are translated by error code (never by
message) and chained by the caller (``raise X from exc``); and the small request helpers every
S3 adapter shares (conditions, ETags, version arguments)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from tasks.errors import SourceChanged, SourceMissing, StorageUnavailable, WriteConflict

if TYPE_CHECKING:
    from tasks.fence import Condition
    from tasks.models import ObjectRef

MISSING = {"NoSuchKey", "404", "NotFound", "NoSuchVersion", "NoSuchBucket"}
CHANGED = {"PreconditionFailed", "412"}
CONFLICT = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
TRANSIENT = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "500",
    "502",
    "503",
    "504",
}


def code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: Exception, *, what: str) -> Exception:
    """Map a boto error to chute's error contract; unknown errors are returned unchanged."""
    if isinstance(exc, ClientError):
        name = code(exc)
        if name in MISSING:
            return SourceMissing(f"{what}: not found ({name})")
        if name in CHANGED:
            return SourceChanged(f"{what}: object changed since the event ({name})")
        if name in TRANSIENT:
            return StorageUnavailable(f"{what}: S3 answered {name}")
    if isinstance(exc, BotoCoreError):
        return StorageUnavailable(f"{what}: {type(exc).__name__}")
    return exc


def translate_write(exc: Exception, *, what: str) -> Exception:
    """Like :func:`translate`, for conditional writes: a failed precondition or a concurrent
    conditional write is a WriteConflict (look again), not a changed source."""
    if isinstance(exc, ClientError) and code(exc) in CONFLICT:
        return WriteConflict(f"{what}: another writer changed the object ({code(exc)})")
    return translate(exc, what=what)


def conditions(condition: Condition | None) -> dict[str, str]:
    if condition is None:
        return {}
    if condition.if_none_match:
        return {"IfNoneMatch": "*"}
    if condition.if_match:
        return {"IfMatch": f'"{strip_etag(condition.if_match)}"'}
    return {}


def strip_etag(etag: str) -> str:
    return etag.strip('"')


def version_args(ref: ObjectRef) -> dict[str, str]:
    return {"VersionId": ref.version_id} if ref.version_id else {}
