"""Deployment parameters: typed, with defaults, overridable with CDK context (``-c key=value``
or ``cdk.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from infra.components.grants import THROTTLE_BURST as GRANT_BURST
from tasks import names
from tasks.batch_sizing import BatchSizing, SizingError
from tasks.settings import MAX_GRANT_EXPIRES_SECONDS


@dataclass(frozen=True, kw_only=True)
class ChuteProps:
    # Which uploads start a pipeline execution.
    key_prefix: str = ""
    suffixes: tuple[str, ...] = names.DEFAULT_SUFFIXES
    # Routing and limits.
    large_file_threshold_bytes: int = names.DEFAULT_LARGE_FILE_THRESHOLD_BYTES
    max_file_bytes: int = names.DEFAULT_MAX_FILE_BYTES
    # Per compressed file: content bytes allowed, and how many times its compressed size it may
    # expand (checked past the first 64 MiB of content) -- decompression bombs end quarantined.
    max_decompressed_bytes: int = names.DEFAULT_MAX_DECOMPRESSED_BYTES
    max_decompression_ratio: int = names.DEFAULT_MAX_DECOMPRESSION_RATIO
    # Outputs for files no data contract matches (contracts/contracts.toml names their own).
    output_formats: tuple[str, ...] = tuple(names.DEFAULT_OUTPUT_FORMATS.split(","))
    batch_timeout_seconds: int = names.DEFAULT_BATCH_TIMEOUT_SECONDS
    # The Batch job sized to the file (tasks.batch_sizing): the smallest power-of-two vCPU count
    # from min to max giving each vCPU at most bytes_per_vcpu of the file, and this much memory
    # per vCPU (the job definition holds the smallest rung).
    batch_min_vcpu: int = BatchSizing.min_vcpu
    batch_max_vcpu: int = BatchSizing.max_vcpu
    batch_bytes_per_vcpu: int = BatchSizing.bytes_per_vcpu
    batch_memory_per_vcpu_mib: int = BatchSizing.memory_per_vcpu_mib
    # One file across many workers (docs/huge-files.md): uncompressed files without a data
    # contract of at least this size are cut into parts of about fanout_part_bytes, converted by
    # the convert function at most fanout_max_concurrency at once.
    fanout_threshold_bytes: int = names.DEFAULT_FANOUT_THRESHOLD_BYTES
    fanout_part_bytes: int = names.DEFAULT_FANOUT_PART_BYTES
    fanout_max_concurrency: int = names.DEFAULT_FANOUT_MAX_CONCURRENCY
    # Retention.
    archive_transition_days: int = 30  # originals move to Glacier Instant Retrieval
    archive_expiration_days: int = 0  # 0 keeps originals forever
    # Replaced archived originals (an older version of a key) are kept this long; 0 keeps them.
    archive_noncurrent_days: int = 90
    # Superseded uploads (older versions of a staged key) are kept this long in staging.
    staging_noncurrent_days: int = 14
    log_retention_days: int = 90
    # Throughput.
    trigger_max_concurrency: int = 10
    # Reserved concurrency: at most this many conversions run in Lambda at once, so a burst of
    # uploads can't take the whole account's concurrency (0 = no reservation, no limit).
    # Lambda keeps 100 of the account's concurrency unreserved: an account whose quota is 100
    # or less (new accounts start lower) must deploy with 0.
    convert_max_concurrency: int = 20
    # Concurrency reserved for the grant function: guaranteed to it whatever else runs in the
    # account (0 = none; it shares the unreserved pool).
    grant_reserved_concurrency: int = 0
    # The completion events' bus (docs/events.md); None: "<stack name>-events".
    event_bus_name: str | None = None
    # Operations.
    alert_email: str | None = None
    no_success_alarm_hours: int = 6
    # Scheduled auto-redrive of transiently failed executions: at most this many times each
    # (0 turns it off), every this many minutes.
    auto_redrive_max: int = names.DEFAULT_MAX_REDRIVES
    auto_redrive_every_minutes: int = names.DEFAULT_REDRIVE_EVERY_MINUTES
    # Network for Batch on Fargate: None creates a small VPC (public subnets, no NAT gateway).
    vpc_id: str | None = None
    # The upload grant API. Without an issuer the stack creates a Cognito user pool and app
    # client; with one, tokens of that OpenID Connect provider (any of the audiences) are
    # accepted instead. Both or neither.
    grant_jwt_issuer: str | None = None
    grant_jwt_audience: tuple[str, ...] = ()
    grant_tenant_claim: str = names.DEFAULT_TENANT_CLAIM  # the verified claim naming the tenant
    grant_expires_seconds: int = names.DEFAULT_GRANT_EXPIRES_SECONDS  # presigned URLs
    # Browser origins allowed to call the grant API and to PUT/POST into staging (CORS).
    upload_origins: tuple[str, ...] = ("*",)
    extra_tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if bool(self.grant_jwt_issuer) != bool(self.grant_jwt_audience):
            raise ValueError(
                "chute:grant_jwt_issuer and chute:grant_jwt_audience: give both (tokens of your "
                "own OpenID Connect provider) or neither (the stack creates a Cognito user pool)"
            )
        if self.grant_jwt_issuer and not self.grant_jwt_issuer.startswith("https://"):
            raise ValueError(
                f"chute:grant_jwt_issuer={self.grant_jwt_issuer!r}: the issuer must be an "
                "https:// URL (API Gateway fetches its OpenID configuration from there)"
            )
        if not 1 <= self.grant_expires_seconds <= MAX_GRANT_EXPIRES_SECONDS:
            raise ValueError(
                f"chute:grant_expires_seconds={self.grant_expires_seconds}: choose 1 to "
                f"{MAX_GRANT_EXPIRES_SECONDS} seconds (grants are signed with role credentials "
                "that last at most one hour)"
            )
        if not self.grant_jwt_issuer and self.grant_tenant_claim != names.DEFAULT_TENANT_CLAIM:
            raise ValueError(
                f"chute:grant_tenant_claim={self.grant_tenant_claim!r}: the user pool's tokens "
                f"name the tenant in {names.DEFAULT_TENANT_CLAIM!r}; another claim needs your "
                "own issuer (chute:grant_jwt_issuer)"
            )
        if not self.grant_tenant_claim.strip():
            raise ValueError("chute:grant_tenant_claim: name the token claim that names the tenant")
        if self.max_decompressed_bytes < 1 or self.max_decompression_ratio < 1:
            raise ValueError(
                "chute:max_decompressed_bytes and chute:max_decompression_ratio must be positive"
            )
        zero_means = {"archive_noncurrent_days": "keep", "convert_max_concurrency": "none"}
        for name, zero in zero_means.items():
            if getattr(self, name) < 0:
                raise ValueError(f"chute:{name}={getattr(self, name)}: 0 ({zero}) or more")
        if self.staging_noncurrent_days < 1:
            raise ValueError(
                f"chute:staging_noncurrent_days={self.staging_noncurrent_days}: 1 day or more "
                "(superseded uploads must leave staging eventually)"
            )
        if self.grant_reserved_concurrency and self.grant_reserved_concurrency < GRANT_BURST:
            raise ValueError(
                f"chute:grant_reserved_concurrency={self.grant_reserved_concurrency}: 0 (none) or "
                f"at least {GRANT_BURST}, the grant API's burst (reserved concurrency also caps "
                "the function: fewer would throttle grants the API admits)"
            )
        try:
            self.batch_sizing  # noqa: B018 (validates the four settings together)
        except SizingError as exc:
            raise ValueError(f"chute:batch_* sizing: {exc}") from exc
        if self.fanout_part_bytes < 64 << 20 or self.fanout_max_concurrency < 1:
            raise ValueError(
                "chute:fanout_part_bytes: 64 MiB or more (smaller parts cost more requests and "
                "invocations than they save); chute:fanout_max_concurrency: 1 or more"
            )
        if not self.upload_origins:
            raise ValueError('chute:upload_origins: name at least one origin ("*" for any)')

    @property
    def batch_sizing(self) -> BatchSizing:
        return BatchSizing(
            min_vcpu=self.batch_min_vcpu,
            max_vcpu=self.batch_max_vcpu,
            bytes_per_vcpu=self.batch_bytes_per_vcpu,
            memory_per_vcpu_mib=self.batch_memory_per_vcpu_mib,
        )

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
