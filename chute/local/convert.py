"""``chute convert``: the conversion engine on local files, no AWS at all."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tasks.convert.engine import (
    ChunkTyping,
    EngineOptions,
    EngineResult,
    convert_stream,
)
from tasks.convert.infer import InferredTyping
from tasks.convert.typed import ContractTyping
from tasks.data_contracts.config import load_contracts
from tasks.data_contracts.model import ContractSet
from tasks.formats import OutputFormat
from tasks.formats.keys import from_extension

REPO_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "contracts.toml"
SUFFIX_FORMATS: dict[str, OutputFormat] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}


class ConvertUsageError(ValueError):
    """Bad arguments to ``chute convert``."""


@dataclass(frozen=True)
class LocalResult:
    result: EngineResult
    seconds: float
    input_bytes: int
    output: Path
    rejected: Path | None


def output_format(out: Path, to: str | None) -> OutputFormat:
    if to is not None:
        if to not in ("jsonl", "parquet"):
            raise ConvertUsageError(f"--to must be jsonl or parquet, not {to!r}")
        return "jsonl" if to == "jsonl" else "parquet"
    fmt = SUFFIX_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ConvertUsageError(f"{out}: can't tell the format from the suffix; pass --to")
    return fmt


def contracts_file(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    return Path(os.environ.get("CHUTE_CONTRACTS_FILE") or REPO_CONTRACTS)


def convert_file(
    source: Path,
    out: Path,
    *,
    to: str | None = None,
    contract: str | None = None,
    contracts_path: Path | None = None,
    delimiter: str | None = None,
    infer: bool = False,
) -> LocalResult:
    """Convert ``source`` into ``out`` (written whole or not at all: a temporary file is renamed
    into place). Raises MalformedContent/ContractViolation for bad content."""
    if not source.is_file():
        raise ConvertUsageError(f"{source}: no such file")
    fmt = output_format(out, to)
    typing: ChunkTyping | None = InferredTyping() if infer else None
    quote = '"'
    if contract is not None and infer:
        raise ConvertUsageError("--contract and --infer are exclusive: a contract declares types")
    if contract is not None:
        contracts: ContractSet = load_contracts(contracts_file(contracts_path))
        chosen = contracts.get(contract)
        typing = ContractTyping(chosen)
        quote = chosen.dialect.quote
        delimiter = delimiter or chosen.dialect.delimiter
    options = EngineOptions(
        outputs=(fmt,),
        delimiter=delimiter,
        quote=quote,
        compression=from_extension(source.name),
        typing=typing,
    )
    rejected_path = out.with_name(out.name + ".rejected.jsonl")
    partial = out.with_name(f".{out.name}.partial")
    partial_rejected = rejected_path.with_name(f".{rejected_path.name}.partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        with (
            source.open("rb") as stream,
            partial.open("wb") as sink,
            partial_rejected.open("wb") as rejected,
        ):
            result = convert_stream(
                stream, options, {fmt: sink.write}, rejected_sink=rejected.write
            )
    except BaseException:
        for path in (partial, partial_rejected):
            path.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - started
    partial.replace(out)
    if result.rejected_rows:
        partial_rejected.replace(rejected_path)
    else:
        partial_rejected.unlink(missing_ok=True)
        with contextlib.suppress(FileNotFoundError):
            rejected_path.unlink()  # a stale one from an earlier run
    return LocalResult(
        result=result,
        seconds=seconds,
        input_bytes=source.stat().st_size,
        output=out,
        rejected=rejected_path if result.rejected_rows else None,
    )
