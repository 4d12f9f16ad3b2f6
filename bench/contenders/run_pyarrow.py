"""pyarrow streaming CSV reader (default 1 MiB blocks, type inference on the first block),
batch by batch: Parquet through ParquetWriter(compression="zstd") (one row group per batch);
JSON Lines through polars, pl.from_arrow(batch).write_ndjson(file) appended.
newlines_in_values=True is required for quoted fields that contain newlines.

    python run_pyarrow.py SRC DST parquet|jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq


def main(src: str, dst: str, target: str) -> None:
    # .gz: open_csv decompresses by file extension.
    reader = pa_csv.open_csv(src, parse_options=pa_csv.ParseOptions(newlines_in_values=True))
    if target == "parquet":
        with pq.ParquetWriter(dst, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
    elif target == "jsonl":
        import polars as pl

        with Path(dst).open("wb") as out:
            for batch in reader:
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                frame.write_ndjson(out)
    else:
        raise SystemExit(f"unknown target {target!r}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
