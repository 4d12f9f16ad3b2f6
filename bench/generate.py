"""Generate benchmark CSVs: ~12 mixed columns (ints, floats, ISO timestamps, short strings,
quoted strings with commas, quotes and newlines, empties, non-ASCII), deterministic.

    python bench/generate.py OUT.csv SIZE_MB [--gzip]
"""

from __future__ import annotations

import argparse
import gzip
import random
from pathlib import Path

HEADER = "id,user_id,amount,ratio,created_at,updated_at,country,status,comment,tags,city,note\n"
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]
CITIES = ["Zürich", "São Paulo", "Kraków", "Reykjavík", "東京", "Montréal", "Oslo", "Lima"]
COUNTRIES = ["CH", "BR", "PL", "IS", "JP", "CA", "NO", "PE"]
STATUSES = ["new", "paid", "shipped", "returned", "cancelled"]


def rows(seed: int = 7):  # type: ignore[no-untyped-def]
    rnd = random.Random(seed)
    i = 0
    while True:
        i += 1
        words = rnd.sample(WORDS, 3)
        kind = i % 10
        if kind == 0:
            comment = f'"{words[0]}, {words[1]}\n{words[2]} said ""hi"""'
        elif kind in (1, 2):
            comment = f'"{words[0]}, {words[1]}"'
        elif kind == 3:
            comment = ""
        else:
            comment = " ".join(words)
        yield (
            f"{i},{rnd.randint(1, 10**6)},{rnd.randint(0, 10**6) / 100:.2f},"
            f"{rnd.random():.6f},2026-{1 + i % 12:02d}-{1 + i % 28:02d}T"
            f"{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z,"
            f"{'' if i % 5 == 0 else f'2026-11-{1 + i % 28:02d}T10:00:00Z'},"
            f"{COUNTRIES[i % 8]},{STATUSES[i % 5]},{comment},"
            f'"{words[0]};{words[1]}",{CITIES[i % 8]},'
            f"{'' if i % 3 else 'ok'}\n"
        )


def generate(out: Path, size_mb: float, compress: bool = False) -> int:
    target = int(size_mb * 1024 * 1024)
    opener = gzip.open if compress else open
    written = 0
    count = 0
    with opener(out, "wt", encoding="utf-8", newline="") as f:  # type: ignore[operator]
        f.write(HEADER)
        written += len(HEADER)
        buf: list[str] = []
        size = 0
        for row in rows():
            buf.append(row)
            size += len(row.encode())
            count += 1
            if size >= 1 << 20:
                f.write("".join(buf))
                written += size
                buf, size = [], 0
                if written >= target:
                    break
        if buf:
            f.write("".join(buf))
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("size_mb", type=float)
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args()
    print(generate(args.out, args.size_mb, args.gzip))


if __name__ == "__main__":
    main()
