"""``chute convert`` and ``chute contract suggest``: local files, no AWS. Kept apart from the
other commands, which need boto3 and the embedded runtime: ``chute convert`` starts in a
third of the time (its start-up is part of every conversion's time, bench/native.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from chute.cli.codes import Exit, fail
from chute.cli.console import err

app = typer.Typer()


@app.command()
def convert(
    source: Annotated[
        Path, typer.Argument(help="Input file (CSV/TSV/..., optionally .gz/.zst/.bz2).")
    ],
    out: Annotated[Path, typer.Argument(help="Output file (.jsonl or .parquet).")],
    to: Annotated[str | None, typer.Option(help="Output format: jsonl or parquet.")] = None,
    contract: Annotated[
        str | None, typer.Option(help="Type and check with this data contract.")
    ] = None,
    contracts: Annotated[
        Path | None, typer.Option(help="Contracts file (default: contracts/contracts.toml).")
    ] = None,
    delimiter: Annotated[
        str | None, typer.Option(help="Field delimiter (default: sniffed from the header).")
    ] = None,
    text: Annotated[
        bool,
        typer.Option(help="Every value a string, exactly as written (default: inferred types)."),
    ] = False,
) -> None:
    """Convert a local file with the same engine the pipeline runs (no AWS). Without a
    contract, each column gets the narrowest type every value of the file fits."""
    from chute.ops.convert_file import ConvertUsageError, convert_file
    from tasks.data_contracts.config import ContractConfigError
    from tasks.errors import PermanentError

    try:
        done = convert_file(
            source,
            out,
            to=to,
            contract=contract,
            contracts_path=contracts,
            delimiter=delimiter,
            text=text,
        )
    except (ConvertUsageError, ContractConfigError) as exc:
        raise fail(exc) from exc
    except PermanentError as exc:
        err.print(f"[red]{type(exc).__name__}:[/] {exc}")
        raise typer.Exit(Exit.FAILED) from exc
    r = done.result
    rate = done.input_bytes / 1e6 / done.seconds if done.seconds else 0.0
    # the rate is of the file as read: for .gz/.zst input that is compressed bytes, say so
    of = f" of {r.compression} input" if r.compression != "none" else ""
    err.print(
        f"{r.rows} rows -> {done.output} in {done.seconds:.2f}s ({rate:.0f} MB/s{of})"
        + (f"; {r.rejected_rows} rejected -> {done.rejected}" if done.rejected else "")
    )
    if r.schema is not None:
        err.print(
            "types: " + ", ".join(f"{name} {kind}" for name, kind in r.schema.items()),
            markup=False,
            highlight=False,
        )
    for w in r.widened:
        err.print(
            f"widened {w.column}: {w.from_type} -> {w.to_type} at row {w.row} ({w.value!r});"
            " the file was read twice",
            markup=False,
            highlight=False,
        )


contract_app = typer.Typer(help="Data contracts: suggest one from a file.", no_args_is_help=True)
app.add_typer(contract_app, name="contract")


@contract_app.command("suggest")
def contract_suggest(
    source: Annotated[Path, typer.Argument(help="A file (CSV/TSV/..., optionally .gz/.zst/.bz2).")],
    name: Annotated[str | None, typer.Option(help="The contract's name.")] = None,
    delimiter: Annotated[
        str | None, typer.Option(help="Field delimiter (default: sniffed from the header).")
    ] = None,
) -> None:
    """Print a data contract (TOML for contracts/contracts.toml) with the types inferred from
    every value of SOURCE: paste it to pin the schema."""
    from chute.ops.convert_file import ConvertUsageError, suggest_contract
    from tasks.errors import PermanentError

    try:
        suggestion = suggest_contract(source, name=name, delimiter=delimiter)
    except ConvertUsageError as exc:
        raise fail(exc) from exc
    except PermanentError as exc:
        err.print(f"[red]{type(exc).__name__}:[/] {exc}")
        raise typer.Exit(Exit.FAILED) from exc
    typer.echo(suggestion.contract, nl=False)
