"""``chute convert``: the conversion engine on local files, no AWS at all."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tasks.convert.engine import (
    EngineOptions,
    EngineResult,
    Widened,
    convert_restarting,
    convert_stream,
)
from tasks.convert.typed import ContractTyping
from tasks.data_contracts.config import load_contracts
from tasks.data_contracts.model import ContractSet
from tasks.data_contracts.suggest import contract_toml
from tasks.formats import OUTPUT_FORMATS, OutputFormat
from tasks.formats.keys import REJECTED_SUFFIX, from_extension

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
        for known in OUTPUT_FORMATS:
            if to == known:
                return known
        raise ConvertUsageError(f"--to must be one of {', '.join(OUTPUT_FORMATS)}, not {to!r}")
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
    text: bool = False,
) -> LocalResult:
    """Convert ``source`` into ``out`` (written whole or not at all: a temporary file is renamed
    into place). Without a contract, types are inferred (``text``: every value a string).
    Raises MalformedContent/ContractViolation for bad content."""
    if not source.is_file():
        raise ConvertUsageError(f"{source}: no such file")
    fmt = output_format(out, to)
    typing: ContractTyping | None = None
    quote = '"'
    if contract is not None and text:
        raise ConvertUsageError("--contract and --text are exclusive: a contract declares types")
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
        infer=typing is None and not text,
    )
    rejected_path = out.with_name(out.name + REJECTED_SUFFIX)
    partial = out.with_name(f".{out.name}.partial")
    partial_rejected = rejected_path.with_name(f".{rejected_path.name}.partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def attempt(options: EngineOptions) -> EngineResult:
        """One conversion from the file's start (files opened "wb": a restart starts them
        over)."""
        with (
            source.open("rb") as stream,
            partial.open("wb") as sink,
            partial_rejected.open("wb") as rejected,
        ):
            return convert_stream(stream, options, {fmt: sink.write}, rejected_sink=rejected.write)

    try:
        result = convert_restarting(attempt, options)
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


@dataclass(frozen=True)
class Suggestion:
    contract: str
    """The contract in the format of contracts/contracts.toml."""
    result: EngineResult


def suggest_contract(
    source: Path, *, name: str | None = None, delimiter: str | None = None
) -> Suggestion:
    """A data contract for files like ``source``: its columns with the types every value of the
    file fits (one read of the file, nothing written)."""
    if not source.is_file():
        raise ConvertUsageError(f"{source}: no such file")
    options = EngineOptions(
        outputs=(), delimiter=delimiter, compression=from_extension(source.name), infer=True
    )
    with source.open("rb") as stream:
        try:
            result = convert_stream(stream, options, {})
        except Widened as widened:  # no output to give up: the types are the whole file's
            result = widened.result
    contract = contract_toml(name or source.name, result.schema or {}, delimiter=result.delimiter)
    return Suggestion(contract=contract, result=result)
