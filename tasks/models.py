"""What travels between states: pointers only (Step Functions caps state data at 256 KiB).

State data of one execution (JSONPath, camelCase as in the ASL):

    $.source       ObjectRef   the object the S3 event announced (set by the trigger)
    $.config       {largeFileThresholdBytes, batchTimeoutSeconds}  set by LoadConfig
    $.plan         Plan        file (validated ObjectRef + format) and target (where output goes)
    $.convert      how the conversion ran: {route: "lambda", rows, bytes, replaced, schema,
                   widened} (from the convert function's Output) or {route: "batch", jobId}
    $.archive      ObjectRef   where the original now lives (bucket, key, size)
    $.error        {Error, Cause}  set by a Catch
    $.batchFailure {job}       the failed Batch job's description, parsed from $.error.Cause
    $.relay        what NameBatchFailure returned when it had no job error to raise again
    $.failedState  str         the state whose error sent the file to Quarantine
    $.quarantine   {bucket, key, reportKey}  where the file and its report went
    $.summary      the completion message NotifySucceeded / NotifyRejected publish

The events each step receives and returns: docs/step-events.md. Also here: types a domain and
its adapter share (``Head``, ``FailedExecution``), so that adapters never import a domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tasks.formats import COMPRESSIONS, DELIMITERS, OUTPUT_FORMATS, Compression, OutputFormat, keys


class ModelError(ValueError):
    """A step received input that doesn't have the expected shape."""


def _str(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ModelError(f"missing or invalid field {name!r}")
    return value


def _opt_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ModelError(f"field {name!r} must be a string")
    return value


def _int(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ModelError(f"missing or invalid field {name!r}")
    return value


def _mapping(data: Any, name: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ModelError(f"{name} must be an object")
    return data


def upload_time(value: datetime | str | None) -> str | None:
    """An upload's time as stamps compare it: ISO 8601 in UTC with milliseconds
    (``2026-12-06T15:04:05.123Z``), from an S3 event's ``eventTime`` or an object's
    LastModified. None when absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object version: the unit chute processes."""

    bucket: str
    key: str
    size: int
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    uploaded: str | None = None
    """When the upload happened (:func:`upload_time`): the S3 event's time, else the object's
    LastModified (set by Validate). Orders uploads of different keys (tasks.fence)."""

    @classmethod
    def from_dict(cls, data: Any) -> ObjectRef:
        data = _mapping(data, "object reference")
        return cls(
            bucket=_str(data, "bucket"),
            key=_str(data, "key"),
            size=_int(data, "size"),
            etag=_opt_str(data, "eTag"),
            version_id=_opt_str(data, "versionId"),
            sequencer=_opt_str(data, "sequencer"),
            uploaded=upload_time(_opt_str(data, "uploaded")),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bucket": self.bucket, "key": self.key, "size": self.size}
        if self.etag:
            out["eTag"] = self.etag
        if self.version_id:
            out["versionId"] = self.version_id
        if self.sequencer:
            out["sequencer"] = self.sequencer
        if self.uploaded:
            out["uploaded"] = self.uploaded
        return out


@dataclass(frozen=True)
class FileSpec:
    """A validated object and how to read it (``delimiter`` None: sniffed from the header)."""

    ref: ObjectRef
    compression: Compression = "none"
    delimiter: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> FileSpec:
        data = _mapping(data, "file")
        compression = data.get("compression", "none")
        if compression not in COMPRESSIONS:
            raise ModelError(f"unknown compression {compression!r}")
        delimiter = data.get("delimiter")
        if delimiter is not None and delimiter not in DELIMITERS:
            raise ModelError(f"unsupported delimiter {delimiter!r}")
        return cls(ref=ObjectRef.from_dict(data), compression=compression, delimiter=delimiter)

    def to_dict(self) -> dict[str, Any]:
        return {**self.ref.to_dict(), "compression": self.compression, "delimiter": self.delimiter}


@dataclass(frozen=True)
class Target:
    """Where a conversion writes: ``<key>.<format>`` for each format (and
    ``<key>.rejected.jsonl`` for rows a contract drops), under the contract named, if any."""

    bucket: str
    key: str
    formats: tuple[OutputFormat, ...] = ("jsonl",)
    contract: str | None = None
    infer: bool = False
    """Without a contract: types inferred from the values (else every value a string)."""

    def object_key(self, output_format: OutputFormat) -> str:
        return keys.output_key(self.key, output_format)

    @property
    def rejected_key(self) -> str:
        return keys.rejected_key(self.key)

    def slot_keys(self) -> tuple[str, ...]:
        """Every key a file with this target may publish, whatever its formats, in the order
        :func:`tasks.fence.publish_all` goes through them: the outputs of every format, then the
        rejected rows. Two files whose targets share these keys race for them."""
        return (*(self.object_key(f) for f in OUTPUT_FORMATS), self.rejected_key)

    @classmethod
    def from_dict(cls, data: Any) -> Target:
        data = _mapping(data, "target")
        formats = data.get("formats", ["jsonl"])
        if (
            not isinstance(formats, list)
            or not formats
            or any(f not in OUTPUT_FORMATS for f in formats)
        ):
            raise ModelError(f"formats must be a non-empty list of {OUTPUT_FORMATS}")
        return cls(
            bucket=_str(data, "bucket"),
            key=_str(data, "key"),
            formats=tuple(formats),
            contract=_opt_str(data, "contract"),
            infer=data.get("infer") is True,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "formats": list(self.formats),
            "contract": self.contract,
            "infer": self.infer,
            "keys": {f: self.object_key(f) for f in self.formats},
        }


@dataclass(frozen=True)
class Plan:
    """Validation's verdict: what to read and where to write."""

    file: FileSpec
    target: Target
    resources: dict[str, str] | None = None
    """The Batch job's ``{"vcpu", "memory"}`` for this file (tasks.batch_sizing); the state
    machine passes them as the job's resource requirements on the Batch route."""

    @classmethod
    def from_dict(cls, data: Any) -> Plan:
        data = _mapping(data, "plan")
        resources = data.get("resources")
        return cls(
            file=FileSpec.from_dict(data.get("file")),
            target=Target.from_dict(data.get("target")),
            resources=dict(resources) if isinstance(resources, Mapping) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        document = {"file": self.file.to_dict(), "target": self.target.to_dict()}
        return document if self.resources is None else {**document, "resources": self.resources}


@dataclass(frozen=True)
class Output:
    """What a conversion wrote."""

    bucket: str
    keys: dict[str, str]
    rows: int
    rejected_rows: int = 0
    bytes: dict[str, int] | None = None
    rejected_key: str | None = None
    replaced: tuple[dict[str, str], ...] = ()
    """Other staged files (``{bucket, key, version, uploaded}``) whose outputs this conversion
    replaced: earlier uploads of keys that map to the same outputs."""
    schema: dict[str, str] | None = None
    """Inferred types, column -> type (``string``, ``int``, ``float``, ``bool``, ``date``,
    ``timestamp``); None in text mode and with a contract (its types)."""
    widened: tuple[dict[str, str | int], ...] = ()
    """Columns whose inferred type a later value widened (the file was read twice): each
    ``{column, from, to, row, value}`` with the first value that didn't fit."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "keys": self.keys,
            "rows": self.rows,
            "rejectedRows": self.rejected_rows,
            "bytes": self.bytes or {},
            "rejectedKey": self.rejected_key,
            "replaced": list(self.replaced),
            "schema": self.schema,
            "widened": list(self.widened),
        }


@dataclass(frozen=True)
class FailedExecution:
    """A failed (or timed-out, or aborted) execution as the auto-redrive sees it."""

    arn: str
    name: str
    status: str  # FAILED | TIMED_OUT | ABORTED
    stopped: datetime
    error: str | None
    cause: str | None
    fail_state: str | None
    """The Fail state the execution ended in (``tasks.workflow.FAIL_STATES``); None: a task's
    error after its retries, or a timeout."""
    redrive_count: int


@dataclass(frozen=True)
class Head:
    """What S3 says of an object (HeadObject), as the adapter gives it to the domains."""

    size: int
    etag: str
    version_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    last_modified: str | None = None
    """LastModified (:func:`upload_time`)."""
