"""polars streaming engine, its defaults (type inference):
scan_csv(src).sink_parquet(dst, compression="zstd") | .sink_ndjson(dst).

    python run_polars.py SRC DST parquet|jsonl
"""

from __future__ import annotations

import sys

import polars as pl


def main(src: str, dst: str, target: str) -> None:
    frame = pl.scan_csv(src)  # .gz: polars decompresses it itself
    if target == "parquet":
        frame.sink_parquet(dst, compression="zstd")
    elif target == "jsonl":
        frame.sink_ndjson(dst)
    else:
        raise SystemExit(f"unknown target {target!r}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
