"""Standard library only: csv.DictReader + json.dumps, one line per row, every value a string.
JSON Lines only (the standard library has no Parquet writer).

    python run_stdlib.py SRC DST jsonl
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from pathlib import Path
from typing import TextIO


def open_text(path: str) -> TextIO:
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return Path(path).open(encoding="utf-8", newline="")


def main(src: str, dst: str, target: str) -> None:
    if target != "jsonl":
        raise SystemExit(f"stdlib contender writes JSON Lines only, not {target!r}")
    with open_text(src) as source, Path(dst).open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in csv.DictReader(source))


if __name__ == "__main__":
    main(*sys.argv[1:4])
