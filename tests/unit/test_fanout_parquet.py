"""Joining the parts' Parquet files into one without re-encoding (tasks.fanout.parquet_parts)."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.fanout import thrift
from tasks.fanout.parquet_parts import PartFile, PartsError, layout
from tasks.fanout.thrift import get


def _parquet(table: pa.Table, **kwargs: object) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **kwargs)  # type: ignore[arg-type]
    return sink.getvalue()


def join(files: list[bytes]) -> bytes:
    parts = [
        PartFile.read(len(f), lambda a, b, f=f: f[a:b], f"part {i}") for i, f in enumerate(files)
    ]
    ranges, tail = layout(parts)
    return b"".join(f[a:b] for f, (a, b) in zip(files, ranges, strict=True)) + tail


def _table(start: int, rows: int) -> pa.Table:
    ids = list(range(start, start + rows))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "name": pa.array([f"name-{i % 7}" if i % 5 else None for i in ids], pa.string()),
            "score": pa.array([i * 0.5 for i in ids], pa.float64()),
            "day": pa.array([i % 365 for i in ids], pa.date32()),
        }
    )


def _check_page_index(data: bytes) -> int:
    """Every offset index entry points at a page header whose size adds up; returns pages."""
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    footer_len = int.from_bytes(data[-8:-4], "little")
    fmd, _ = thrift.read_struct(data[-8 - footer_len : -8])
    pages = 0
    for rg in get(fmd, 4).values:
        for cc in get(rg, 1).values:
            if get(rg, 3) == 0:  # an empty table's one empty row group: no pages
                continue
            index, _ = thrift.read_struct(data, get(cc, 4))
            locations = get(index, 1).values
            assert get(locations[0], 1) == get(get(cc, 3), 9)  # first data page
            for location in locations:
                header, end = thrift.read_struct(data, get(location, 1))
                assert end - get(location, 1) + get(header, 3) == get(location, 2)
                pages += 1
    assert meta.num_row_groups == len(get(fmd, 4).values)
    return pages


@pytest.mark.parametrize("sizes", [[1000], [1000, 2000, 1], [0, 500, 0], [70_000, 30_000]])
def test_joined_file_holds_every_part_in_order(sizes: list[int]) -> None:
    tables, start = [], 0
    for n in sizes:
        tables.append(_table(start, n))
        start += n
    files = [
        _parquet(t, write_page_index=True, compression="zstd", data_page_size=4096) for t in tables
    ]
    joined = join(files)
    whole = pa.concat_tables(tables)
    assert pq.read_table(io.BytesIO(joined)).equals(whole)
    meta = pq.ParquetFile(io.BytesIO(joined)).metadata
    assert meta.num_rows == sum(sizes)
    stats = meta.row_group(meta.num_row_groups - 1).column(0).statistics if sizes[-1] else None
    if stats is not None:
        assert stats.max == sum(sizes) - 1
    _check_page_index(joined)


def test_duckdb_reads_the_joined_file(tmp_path: Path) -> None:
    files = [_parquet(_table(i * 3000, 3000), write_page_index=True) for i in range(4)]
    path = tmp_path / "joined.parquet"
    path.write_bytes(join(files))
    rows = duckdb.sql(f"select count(*), sum(id), count(name) from '{path}'").fetchall()
    assert rows == [(12000, sum(range(12000)), sum(1 for i in range(12000) if i % 5))]


def test_parts_written_by_chute_join(tmp_path: Path) -> None:
    """The engine's own Parquet (dictionary, page index, statistics, zstd) joins too."""
    import subprocess
    import sys

    outputs = []
    for k in range(3):
        src = tmp_path / f"p{k}.csv"
        rows = "".join(
            f"{i},v{i % 9},2024-01-{1 + i % 28:02d},{i / 4}\n"
            for i in range(k * 5000, (k + 1) * 5000)
        )
        src.write_text("id,tag,day,x\n" + rows)
        dst = tmp_path / f"p{k}.parquet"
        chute = Path(sys.executable).parent / "chute"
        subprocess.run([str(chute), "convert", str(src), str(dst), "--to", "parquet"], check=True)
        outputs.append(dst.read_bytes())
    joined = join(outputs)
    table = pq.read_table(io.BytesIO(joined))
    assert table.num_rows == 15000
    assert table.column("id").to_pylist() == list(range(15000))
    assert table.schema == pq.read_table(io.BytesIO(outputs[0])).schema
    assert _check_page_index(joined) >= 3


def test_different_schemas_are_refused() -> None:
    a = _parquet(_table(0, 10))
    b = _parquet(
        _table(0, 10).cast(
            pa.schema(
                [
                    ("id", pa.string()),
                    ("name", pa.string()),
                    ("score", pa.float64()),
                    ("day", pa.date32()),
                ]
            )
        )
    )
    with pytest.raises(PartsError, match="part 1 has another schema"):
        join([a, b])


@pytest.mark.parametrize(
    "data", [b"", b"PAR1", b"x" * 100, b"PAR1" + b"\x00" * 4 + b"\xff\xff\x00\x00PAR1"]
)
def test_not_parquet_is_refused(data: bytes) -> None:
    with pytest.raises((PartsError, thrift.ThriftError)):
        PartFile.read(len(data), lambda a, b: data[a:b], "part 0")


def test_thrift_round_trip_of_a_real_footer() -> None:
    data = _parquet(_table(0, 100), write_page_index=True)
    footer_len = int.from_bytes(data[-8:-4], "little")
    raw = data[-8 - footer_len : -8]
    fmd, end = thrift.read_struct(raw)
    assert end == len(raw)
    assert thrift.write_struct(fmd) == raw
