"""polars streaming engine, all cores:
scan_csv(src).sink_parquet(dst, compression="zstd") | .sink_ndjson(dst).

    python run_polars.py SRC DST parquet|jsonl [text]

Default: polars' own type inference. ``text``: every column read as text
(``scan_csv(infer_schema=False)``), the same work as chute's text mode.
"""

from __future__ import annotations

import sys

import polars as pl


def main(src: str, dst: str, target: str, mode: str = "inferred") -> None:
    # .gz: polars decompresses it itself
    frame = pl.scan_csv(src, infer_schema=False) if mode == "text" else pl.scan_csv(src)
    if target == "parquet":
        frame.sink_parquet(dst, compression="zstd")
    elif target == "jsonl":
        frame.sink_ndjson(dst)
    else:
        raise SystemExit(f"unknown target {target!r}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
