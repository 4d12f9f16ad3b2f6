"""Typed settings, one object per deployable, built once at cold start from an injected mapping.

Nothing reads ``os.environ`` at import: handlers call ``X.from_mapping(os.environ)`` on their first
invocation, tests and the embedded runtime pass plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tasks import names
from tasks.batch_sizing import BatchSizing, SizingError
from tasks.formats import OUTPUT_FORMATS, OutputFormat
from tasks.s3_limits import MIN_PART_BYTES


class SettingsError(ValueError):
    """A required setting is missing or malformed."""


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"setting {name} is required")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"setting {name} must be an integer, got {raw!r}") from exc
    if value <= 0:
        raise SettingsError(f"setting {name} must be positive, got {value}")
    return value


def _suffixes(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get(names.ENV_SUFFIXES, "").strip()
    if not raw:
        return names.DEFAULT_SUFFIXES
    items = tuple(s.strip().lower() for s in raw.split(",") if s.strip())
    return tuple(s if s.startswith(".") else f".{s}" for s in items)


@dataclass(frozen=True)
class TriggerSettings:
    state_machine_arn: str
    suffixes: tuple[str, ...] = names.DEFAULT_SUFFIXES
    prefix: str = ""

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> TriggerSettings:
        return cls(
            state_machine_arn=_required(env, names.ENV_STATE_MACHINE_ARN),
            suffixes=_suffixes(env),
            prefix=env.get(names.ENV_PREFIX, ""),
        )


def _contracts_file(env: Mapping[str, str]) -> Path | None:
    """The data contracts file, which must exist (None: no contracts, every file is text)."""
    raw = env.get(names.ENV_CONTRACTS_FILE, "").strip()
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise SettingsError(
            f"setting {names.ENV_CONTRACTS_FILE} names the data contracts file {raw!r},"
            f" which {what} (working directory: {Path.cwd()})"
        )
    return path


_UNSET_OUTPUT_FORMATS: tuple[OutputFormat, ...] = tuple(
    f for f in OUTPUT_FORMATS if f in names.DEFAULT_OUTPUT_FORMATS.split(",")
)
"""When the setting is absent. Deployments set it (the CDK app and the embedded runtime pass
``names.DEFAULT_OUTPUT_FORMATS`` unless told otherwise)."""


def _output_formats(env: Mapping[str, str]) -> tuple[OutputFormat, ...]:
    """Comma-separated output formats of files that match no contract, in order, no repeats."""
    raw = env.get(names.ENV_OUTPUT_FORMATS, "").strip()
    if not raw:
        return _UNSET_OUTPUT_FORMATS
    chosen: list[OutputFormat] = []
    for item in (s.strip().lower() for s in raw.split(",")):
        if not item:
            continue
        known = next((f for f in OUTPUT_FORMATS if f == item), None)
        if known is None:
            raise SettingsError(
                f"setting {names.ENV_OUTPUT_FORMATS}: unknown output format {item!r}"
                f" (use {', '.join(OUTPUT_FORMATS)}, comma-separated)"
            )
        if known in chosen:
            raise SettingsError(f"setting {names.ENV_OUTPUT_FORMATS} lists {item!r} twice")
        chosen.append(known)
    if not chosen:
        raise SettingsError(f"setting {names.ENV_OUTPUT_FORMATS} names no output format: {raw!r}")
    return tuple(chosen)


@dataclass(frozen=True)
class DecompressionLimits:
    """How much a compressed file may expand, checked while its content streams out."""

    max_bytes: int = names.DEFAULT_MAX_DECOMPRESSED_BYTES
    """Content bytes allowed per file."""
    max_ratio: int = names.DEFAULT_MAX_DECOMPRESSION_RATIO
    """Content bytes allowed per compressed byte read so far..."""
    grace_bytes: int = names.DECOMPRESSION_RATIO_GRACE_BYTES
    """...once more than this much content has come out (small files expand freely)."""

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> DecompressionLimits:
        return cls(
            max_bytes=_int(
                env, names.ENV_MAX_DECOMPRESSED_BYTES, names.DEFAULT_MAX_DECOMPRESSED_BYTES
            ),
            max_ratio=_int(
                env, names.ENV_MAX_DECOMPRESSION_RATIO, names.DEFAULT_MAX_DECOMPRESSION_RATIO
            ),
            grace_bytes=names.DECOMPRESSION_RATIO_GRACE_BYTES,
        )


@dataclass(frozen=True)
class ValidateSettings:
    output_bucket: str
    suffixes: tuple[str, ...] = names.DEFAULT_SUFFIXES
    max_file_bytes: int = names.DEFAULT_MAX_FILE_BYTES
    contracts_file: Path | None = None
    """Data contracts (TOML); None: no contracts, every file is converted as text."""
    output_formats: tuple[OutputFormat, ...] = _UNSET_OUTPUT_FORMATS
    """What files that match no contract are converted to (a contract names its own)."""
    decompression: DecompressionLimits = DecompressionLimits()
    batch_sizing: BatchSizing = field(default_factory=BatchSizing)
    """The Batch job's vCPU and memory for a file's size (the Batch route)."""

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> ValidateSettings:
        return cls(
            output_bucket=_required(env, names.ENV_OUTPUT_BUCKET),
            suffixes=_suffixes(env),
            max_file_bytes=_int(env, names.ENV_MAX_FILE_BYTES, names.DEFAULT_MAX_FILE_BYTES),
            contracts_file=_contracts_file(env),
            output_formats=_output_formats(env),
            decompression=DecompressionLimits.from_mapping(env),
            batch_sizing=_batch_sizing(env),
        )


def _batch_sizing(env: Mapping[str, str]) -> BatchSizing:
    try:
        return BatchSizing.from_setting(env.get(names.ENV_BATCH_SIZING, "").strip() or "{}")
    except SizingError as exc:
        raise SettingsError(f"setting {names.ENV_BATCH_SIZING}: {exc}") from exc


DEFAULT_PART_SIZE_BYTES = names.DEFAULT_PART_SIZE_BYTES
MIN_PART_SIZE_BYTES = MIN_PART_BYTES


@dataclass(frozen=True)
class ConvertSettings:
    part_size_bytes: int = DEFAULT_PART_SIZE_BYTES
    contracts_file: Path | None = None
    """Data contracts named by plans (Target.contract); None: text mode only."""
    decompression: DecompressionLimits = DecompressionLimits()

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> ConvertSettings:
        part = _int(env, names.ENV_PART_SIZE_BYTES, DEFAULT_PART_SIZE_BYTES)
        if part < MIN_PART_SIZE_BYTES:
            raise SettingsError(
                f"setting {names.ENV_PART_SIZE_BYTES} must be at least {MIN_PART_SIZE_BYTES}"
            )
        return cls(
            part_size_bytes=part,
            contracts_file=_contracts_file(env),
            decompression=DecompressionLimits.from_mapping(env),
        )


@dataclass(frozen=True)
class FanOutSettings:
    part_bytes: int = names.DEFAULT_FANOUT_PART_BYTES
    """Source bytes per part (cuts move to the next record boundary)."""
    contracts_file: Path | None = None
    """The data contracts: a contract's quote character (for the cuts) and error policy (the
    commit decides it for the whole file)."""

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> FanOutSettings:
        return cls(
            part_bytes=_int(env, names.ENV_FANOUT_PART_BYTES, names.DEFAULT_FANOUT_PART_BYTES),
            contracts_file=_contracts_file(env),
        )


@dataclass(frozen=True)
class ArchiveSettings:
    archive_bucket: str

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> ArchiveSettings:
        return cls(archive_bucket=_required(env, names.ENV_ARCHIVE_BUCKET))


@dataclass(frozen=True)
class QuarantineSettings:
    quarantine_bucket: str
    output_bucket: str | None = None
    """The only bucket a rejecting Batch job's error is read from (the workflow passes where the
    job left it, ``jobFailure``); None: never read."""

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> QuarantineSettings:
        return cls(
            quarantine_bucket=_required(env, names.ENV_QUARANTINE_BUCKET),
            output_bucket=env.get(names.ENV_OUTPUT_BUCKET, "").strip() or None,
        )


MAX_GRANT_EXPIRES_SECONDS = 3600
"""Grants are signed with the grant function's own temporary credentials and STS caps chained
role sessions at one hour: longer expiries would be promises S3 does not keep."""


@dataclass(frozen=True)
class GrantSettings:
    staging_bucket: str
    prefix: str = ""
    """Keys start with it (the trigger only starts executions for keys under it)."""
    suffixes: tuple[str, ...] = names.DEFAULT_SUFFIXES
    max_file_bytes: int = names.DEFAULT_MAX_FILE_BYTES
    upload_role_arn: str | None = None
    """Assumed for credentials grants; None: that kind is not offered."""
    expires_seconds: int = names.DEFAULT_GRANT_EXPIRES_SECONDS
    tenant_claim: str = names.DEFAULT_TENANT_CLAIM
    """The verified token claim that names the caller's tenant."""

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> GrantSettings:
        expires = _int(env, names.ENV_GRANT_EXPIRES_SECONDS, names.DEFAULT_GRANT_EXPIRES_SECONDS)
        if expires > MAX_GRANT_EXPIRES_SECONDS:
            raise SettingsError(
                f"setting {names.ENV_GRANT_EXPIRES_SECONDS} must be at most"
                f" {MAX_GRANT_EXPIRES_SECONDS} (one hour), got {expires}"
            )
        return cls(
            staging_bucket=_required(env, names.ENV_STAGING_BUCKET),
            prefix=env.get(names.ENV_PREFIX, ""),
            suffixes=_suffixes(env),
            max_file_bytes=_int(env, names.ENV_MAX_FILE_BYTES, names.DEFAULT_MAX_FILE_BYTES),
            upload_role_arn=env.get(names.ENV_UPLOAD_ROLE_ARN, "").strip() or None,
            expires_seconds=expires,
            tenant_claim=env.get(names.ENV_TENANT_CLAIM, "").strip() or names.DEFAULT_TENANT_CLAIM,
        )


@dataclass(frozen=True)
class RedriveSettings:
    state_machine_arn: str
    max_redrives: int = names.DEFAULT_MAX_REDRIVES
    """Redrives per execution; Step Functions counts them (redriveCount)."""
    every_minutes: int = names.DEFAULT_REDRIVE_EVERY_MINUTES
    """How often the schedule runs (an execution failing at the cap is reported once)."""
    lookback_hours: int = 24
    """Failures older than this are left to the operators (`chute rerun`)."""

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> RedriveSettings:
        return cls(
            state_machine_arn=_required(env, names.ENV_STATE_MACHINE_ARN),
            max_redrives=_int(env, names.ENV_MAX_REDRIVES, names.DEFAULT_MAX_REDRIVES),
            every_minutes=_int(
                env, names.ENV_REDRIVE_EVERY_MINUTES, names.DEFAULT_REDRIVE_EVERY_MINUTES
            ),
        )
