"""What travels between states: pointers only (Step Functions caps state data at 256 KiB).

State data of one execution (JSONPath, camelCase as in the ASL):

    $.source   ObjectRef   the object the S3 event announced (set by the trigger)
    $.plan     Plan        file (validated ObjectRef + format) and target (where output goes)
    $.output   Output      what the conversion wrote
    $.archive  ObjectRef   where the original now lives
    $.error    {Error, Cause}  set by a Catch
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Compression = Literal["gzip", "none"]
InputFormat = Literal["csv", "tsv"]
OutputFormat = Literal["jsonl"]


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


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object version: the unit chute processes."""

    bucket: str
    key: str
    size: int
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None

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
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bucket": self.bucket, "key": self.key, "size": self.size}
        if self.etag:
            out["eTag"] = self.etag
        if self.version_id:
            out["versionId"] = self.version_id
        if self.sequencer:
            out["sequencer"] = self.sequencer
        return out


@dataclass(frozen=True)
class FileSpec:
    """A validated object and how to read it."""

    ref: ObjectRef
    format: InputFormat
    compression: Compression

    @property
    def delimiter(self) -> str:
        return "\t" if self.format == "tsv" else ","

    @classmethod
    def from_dict(cls, data: Any) -> FileSpec:
        data = _mapping(data, "file")
        fmt = data.get("format")
        compression = data.get("compression")
        if fmt not in ("csv", "tsv"):
            raise ModelError(f"unknown input format {fmt!r}")
        if compression not in ("gzip", "none"):
            raise ModelError(f"unknown compression {compression!r}")
        return cls(ref=ObjectRef.from_dict(data), format=fmt, compression=compression)

    def to_dict(self) -> dict[str, Any]:
        return {**self.ref.to_dict(), "format": self.format, "compression": self.compression}


@dataclass(frozen=True)
class Target:
    """Where a conversion writes."""

    bucket: str
    key: str
    format: OutputFormat = "jsonl"

    @classmethod
    def from_dict(cls, data: Any) -> Target:
        data = _mapping(data, "target")
        fmt = data.get("format", "jsonl")
        if fmt != "jsonl":
            raise ModelError(f"unknown output format {fmt!r}")
        return cls(bucket=_str(data, "bucket"), key=_str(data, "key"), format=fmt)

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "format": self.format}


@dataclass(frozen=True)
class Plan:
    """Validation's verdict: what to read and where to write."""

    file: FileSpec
    target: Target

    @classmethod
    def from_dict(cls, data: Any) -> Plan:
        data = _mapping(data, "plan")
        return cls(
            file=FileSpec.from_dict(data.get("file")), target=Target.from_dict(data.get("target"))
        )

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file.to_dict(), "target": self.target.to_dict()}


@dataclass(frozen=True)
class Output:
    """What a conversion wrote."""

    bucket: str
    key: str
    format: OutputFormat
    rows: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "key": self.key,
            "format": self.format,
            "rows": self.rows,
            "bytes": self.bytes,
        }
