"""Deployment parameters: typed, with defaults, overridable with CDK context (``-c key=value``
or ``cdk.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from tasks import names


@dataclass(frozen=True, kw_only=True)
class ChuteProps:
    # Which uploads start a pipeline execution.
    key_prefix: str = ""
    suffixes: tuple[str, ...] = names.DEFAULT_SUFFIXES
    # Routing and limits.
    large_file_threshold_bytes: int = names.DEFAULT_LARGE_FILE_THRESHOLD_BYTES
    max_file_bytes: int = names.DEFAULT_MAX_FILE_BYTES
    # Outputs for files no data contract matches (contracts/contracts.toml names their own).
    output_formats: tuple[str, ...] = tuple(names.DEFAULT_OUTPUT_FORMATS.split(","))
    batch_timeout_seconds: int = names.DEFAULT_BATCH_TIMEOUT_SECONDS
    batch_vcpu: float = 2
    batch_memory_mib: int = 4096
    # Retention.
    archive_transition_days: int = 30  # originals move to Glacier Instant Retrieval
    archive_expiration_days: int = 0  # 0 keeps originals forever
    log_retention_days: int = 90
    # Throughput.
    trigger_max_concurrency: int = 10
    # Operations.
    alert_email: str | None = None
    no_success_alarm_hours: int = 6
    # Network for Batch on Fargate: None creates a small VPC (public subnets, no NAT gateway).
    vpc_id: str | None = None
    extra_tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_context(cls, get: Any) -> ChuteProps:
        """Build from ``node.try_get_context``-style lookups of ``chute:<field>``."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = get(f"chute:{f.name}")
            if raw is None:
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        return cls(**values)


def _coerce(name: str, typ: Any, raw: Any) -> Any:
    text = str(typ)
    try:
        if "tuple" in text:
            items = raw if isinstance(raw, list) else str(raw).split(",")
            return tuple(str(i).strip() for i in items if str(i).strip())
        if "dict" in text:
            if not isinstance(raw, dict):
                raise TypeError("expected an object")
            return {str(k): str(v) for k, v in raw.items()}
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
        if text == "str":
            return str(raw)
        return None if raw in ("", None) else str(raw)  # optional strings
    except (TypeError, ValueError) as exc:
        raise ValueError(f"context chute:{name}: {exc}") from exc
