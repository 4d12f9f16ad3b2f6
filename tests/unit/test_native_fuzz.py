"""Fuzzing the native core (chute_native) through the engine: no input crashes or hangs it, and
it reads every file exactly as Python's csv module (strict) does, however the file is cut.

A small run is part of `make test`; a longer one: CHUTE_FUZZ_EXAMPLES=20000. Seeds: the bad-input
corpus (tests/support/corpus.py). (cargo-fuzz needs a nightly toolchain; this machine pins
stable, so the fuzzing goes through the Python binding with hypothesis.)
"""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tasks.convert.engine import EngineOptions, convert_stream
from tasks.errors import DecompressionLimitExceeded, MalformedContent
from tasks.settings import DecompressionLimits
from tests.support import corpus

EXAMPLES = int(os.environ.get("CHUTE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEEDS = [case.body for case in corpus.cases() if len(case.body) <= 16 * 1024]
BOMB = next(case.body for case in corpus.cases() if case.name.startswith("bz2 bomb"))
# The worker always converts under decompression limits. Without them a seed such as the bzip2
# bomb (7 KiB -> 80 MiB) read in 1-byte blocks makes a Parquet row group every few bytes:
# gigabytes of row-group metadata and hours, in a configuration no worker runs (blocks are
# CHUNK_BYTES there). The limits' own behaviour is tested in test_convert_engine.py.
LIMITS = DecompressionLimits(max_bytes=64 << 10, max_ratio=1000, grace_bytes=64 << 10)


def convert(data: bytes, **options: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(JSON Lines rows, Parquet rows); raises as the engine does."""
    out: dict[str, list[bytes]] = {"jsonl": [], "parquet": []}
    convert_stream(
        io.BytesIO(data),
        EngineOptions(outputs=("jsonl", "parquet"), **options),
        {"jsonl": out["jsonl"].append, "parquet": out["parquet"].append},
    )
    jsonl = b"".join(out["jsonl"])
    rows = [json.loads(line) for line in jsonl.splitlines()]
    return rows, pq.read_table(io.BytesIO(b"".join(out["parquet"]))).to_pylist()


def outcome(data: bytes, **options: Any) -> Any:
    try:
        return convert(data, **options)
    except MalformedContent as exc:
        return str(exc)


# --- no input crashes, hangs or is half-read --------------------------------------------------


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.binary(max_size=64),
    st.integers(0, 1 << 14),
    st.sampled_from([1, 7, 64, 1 << 20]),
)
@example(BOMB, b"", 0, 7)  # found by this test: ran out of memory before LIMITS
def test_any_bytes_give_rows_or_a_named_error(
    seed: bytes, noise: bytes, at: int, chunk: int
) -> None:
    # GIVEN a corpus file with random bytes spliced in somewhere, read in blocks of `chunk`
    body = seed[: at % (len(seed) + 1)] + noise + seed[at % (len(seed) + 1) :]
    # WHEN converted to both formats THEN rows in both (the same), or a named permanent error
    try:
        rows, table = convert(body, chunk_bytes=chunk, limits=LIMITS)
    except (MalformedContent, DecompressionLimitExceeded):
        return
    assert rows == table


# --- the same rows as the csv module, cut anywhere ---------------------------------------------

PLAIN = st.text(alphabet="ab é東\t;|", max_size=6)
QUOTED = st.text(alphabet='ab,"\n\r é', max_size=6).map(lambda v: '"' + v.replace('"', '""') + '"')
FIELD = st.one_of(PLAIN, PLAIN, QUOTED)
SPICE = st.sampled_from(["", "", "", "\r", "\xff", '"x"y', "\x00"])


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A header and rows of well-quoted fields: mostly the header's width, sometimes not, with
    CRLF or LF endings, blank lines, and now and then a stray CR, invalid UTF-8 or text after a
    closing quote."""
    width = draw(st.integers(1, 4))
    header = ",".join(f"c{i}" for i in range(width))
    lines = [header]
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 9)) == 0:
            lines.append("")  # a blank line
            continue
        n = width if draw(st.integers(0, 7)) else draw(st.integers(1, 5))
        row = ",".join(draw(FIELD) for _ in range(n))
        lines.append(row + draw(SPICE) if draw(st.integers(0, 5)) == 0 else row)
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    text = ending.join(lines) + draw(st.sampled_from([ending, ""]))
    return text.encode("utf-8", errors="surrogateescape").replace("\xff".encode(), b"\xff")


def reference(data: bytes) -> Any:
    """What the engine promises, by the csv module over the whole file: the rows, or the first
    bad row's message (rows counted as the engine counts them: header = 1, blank lines not)."""
    header_line, _, rest = data.partition(b"\n")
    header = next(csv.reader([header_line.rstrip(b"\r").decode()]))
    assert rest.count(b'"') % 2 == 0, "csv_files() closes every quote"
    reader = csv.reader(
        io.StringIO(rest.decode("utf-8", errors="surrogateescape"), newline="\n"), strict=True
    )
    rows: list[dict[str, str]] = []
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            message = str(exc)
            if message.startswith("new-line character seen in unquoted field"):
                message = "a carriage return (CR) outside quotes"
            return f"row {len(rows) + 2}: cannot parse: {message}"
        if not record:
            continue
        if len(record) != len(header):
            return (
                f"row {len(rows) + 2}: expected {len(header)} fields as in the header,"
                f" found {len(record)}"
            )
        try:
            for value in record:
                value.encode()
        except UnicodeEncodeError:
            return f"row {len(rows) + 2}: not valid UTF-8"
        rows.append(dict(zip(header, record, strict=True)))
    return rows, rows


@FUZZ
@given(csv_files(), st.sampled_from([1, 5, 64, 1 << 20]), st.integers(1, 3))
@example(b'c0\n"a\r\nb"\r\n', 1, 1)
@example(b"c0,c1\na,b\rc\n", 1 << 20, 2)
def test_rows_and_errors_are_the_csv_modules(data: bytes, chunk: int, workers: int) -> None:
    # GIVEN a generated file, cut into chunks of any size, parsed by 1-3 workers
    # THEN the same rows as the csv module reads (JSON Lines and Parquet), or the same message
    assert outcome(data, chunk_bytes=chunk, workers=workers) == reference(data)


@pytest.mark.parametrize("seed", SEEDS[:40], ids=lambda s: repr(s[:16]))
def test_corpus_files_convert_or_fail_by_name(seed: bytes) -> None:
    try:
        rows, table = convert(seed)
    except (MalformedContent, DecompressionLimitExceeded):
        return
    assert rows == table
