"""A data contract written from inferred types (``chute contract suggest FILE``), in the format of
``contracts/contracts.toml``: a user pastes it there to pin a file's schema (and tightens it)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final

import chute_native

from tasks.data_contracts.model import ColumnType

_NOT_NAME: Final = re.compile(r"[^A-Za-z0-9_-]+")
_DELIMITERS: Final = {",": ",", "\t": "\\t", "|": "|", ";": ";"}


def contract_name(text: str) -> str:
    """A contract name (letters, digits, ``_`` and ``-``) from a file name: ``flights.csv.gz``
    -> ``flights``."""
    stem = text.split("/")[-1].split(".")[0]
    return _NOT_NAME.sub("-", stem).strip("-") or "inferred"


def _string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def contract_toml(
    file_name: str, schema: Mapping[str, ColumnType], *, delimiter: str | None = None
) -> str:
    """The contract's TOML: matched by the file's suffix, every column as inferred (nullable:
    inference can't tell a column that may be empty from one that happened not to be)."""
    name = contract_name(file_name)
    suffix = "." + ".".join(file_name.split("/")[-1].split(".")[1:]) if "." in file_name else ""
    lines = [
        f"# Suggested by `chute contract suggest` from {file_name}: each column's type is the",
        "# narrowest that every value of the file fits. Check the match rule, then add",
        "# nullable = false, pattern or allowed where you know better (docs/data-contracts.md).",
        f"[contracts.{name}]",
        f"match = {{ suffixes = [{_string(suffix or '.csv')}] }}",
    ]
    if delimiter in _DELIMITERS:
        lines.append(f'dialect = {{ delimiter = "{_DELIMITERS[delimiter]}" }}')
    lines.append('outputs = ["jsonl", "parquet"]')
    lines.append("# null in typed columns, as inference reads them; string columns keep them")
    lines.append(f"nulls = [{', '.join(map(_string, chute_native.NULL_MARKERS))}]")
    for column, kind in schema.items():
        lines += [
            "",
            f"[[contracts.{name}.columns]]",
            f"name = {_string(column)}",
            f'type = "{kind}"',
        ]
    return "\n".join(lines) + "\n"
