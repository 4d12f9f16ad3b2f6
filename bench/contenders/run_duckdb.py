"""DuckDB, in-memory database, its defaults (CSV sniffer, all cores, insertion order kept):
COPY (SELECT * FROM read_csv('src')) TO 'dst' (FORMAT parquet, COMPRESSION zstd) | (FORMAT json).
FORMAT json writes newline-delimited JSON unless ARRAY true is given.

    python run_duckdb.py SRC DST parquet|jsonl
"""

from __future__ import annotations

import sys

import duckdb

FORMATS = {"parquet": "FORMAT parquet, COMPRESSION zstd", "jsonl": "FORMAT json"}


def literal(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def main(src: str, dst: str, target: str) -> None:
    if target not in FORMATS:
        raise SystemExit(f"unknown target {target!r}")
    with duckdb.connect() as con:  # .gz: read_csv detects compression from the extension
        con.execute(
            f"COPY (SELECT * FROM read_csv({literal(src)})) TO {literal(dst)} ({FORMATS[target]})"
        )


if __name__ == "__main__":
    main(*sys.argv[1:4])
