"""One Parquet file from the parts' Parquet files, without decoding or re-encoding a page.

A Parquet file is ``PAR1``, the row groups' column chunks, the page indexes (column index,
offset index), the footer (thrift ``FileMetaData``), its length and ``PAR1``. Every offset in the
footer and in the offset indexes is from the start of the file. So the parts' column chunks are
copied as they are, one after the other (server-side, by the caller: UploadPartCopy), and only
the tail is written anew: each part's column indexes as they were, its offset indexes and row
groups with their offsets moved by where the part's bytes landed, one footer for all.

All parts must have the same schema (the fan-out decides the types for the whole file first).
Bloom filters and encryption are not written by chute's engine and are refused here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tasks.fanout import thrift
from tasks.fanout.thrift import I32, I64, LIST, Struct, get, put

MAGIC = b"PAR1"

# field ids of parquet.thrift
FMD_SCHEMA, FMD_NUM_ROWS, FMD_ROW_GROUPS = 2, 3, 4
FMD_ENCRYPTION = 8
RG_COLUMNS, RG_FILE_OFFSET, RG_ORDINAL = 1, 5, 7
CC_FILE_OFFSET, CC_META = 2, 3
CC_OFFSET_INDEX, CC_OFFSET_INDEX_LEN, CC_COLUMN_INDEX, CC_COLUMN_INDEX_LEN = 4, 5, 6, 7
CC_CRYPTO = 8
MD_DATA_PAGE, MD_INDEX_PAGE, MD_DICTIONARY_PAGE, MD_BLOOM = 9, 10, 11, 14
OI_PAGE_LOCATIONS, PL_OFFSET = 1, 1
I16 = 4


class PartsError(ValueError):
    """The parts can't be joined into one Parquet file."""


Read = Callable[[int, int], bytes]


@dataclass
class PartFile:
    """What joining needs of one part's Parquet file."""

    size: int
    data_end: int
    """Where its column chunks end (its page indexes or footer start)."""
    meta: Struct
    indexes: bytes
    """Its bytes from ``data_end`` to the footer: the page indexes."""
    index_start: int

    @classmethod
    def read(cls, size: int, read: Read, where: str) -> PartFile:
        if size < 12:
            raise PartsError(f"{where}: {size} bytes is not a Parquet file")
        end = read(size - 8, size)
        if end[4:] != MAGIC:
            raise PartsError(f"{where}: no Parquet footer")
        footer_start = size - 8 - int.from_bytes(end[:4], "little")
        if footer_start < 4:
            raise PartsError(f"{where}: footer length out of range")
        meta, _ = thrift.read_struct(read(footer_start, size - 8))
        if get(meta, FMD_ENCRYPTION) is not None:
            raise PartsError(f"{where}: encrypted Parquet can't be joined")
        starts = [footer_start]
        for cc in _chunks(meta):
            md = get(cc, CC_META)
            if get(cc, CC_CRYPTO) is not None or (md and get(md, MD_BLOOM) is not None):
                raise PartsError(f"{where}: bloom filters or column encryption can't be joined")
            starts += [o for o in (get(cc, CC_COLUMN_INDEX), get(cc, CC_OFFSET_INDEX)) if o]
        start = min(starts)
        indexes = read(start, footer_start) if start < footer_start else b""
        return cls(size=size, data_end=start, meta=meta, indexes=indexes, index_start=start)


def _chunks(meta: Struct) -> list[Struct]:
    groups = get(meta, FMD_ROW_GROUPS)
    return [cc for rg in (groups.values if groups else []) for cc in get(rg, RG_COLUMNS).values]


def layout(parts: Sequence[PartFile]) -> tuple[list[tuple[int, int]], bytes]:
    """The byte range of each part to copy, in order, and the tail to write after them: the
    whole is one Parquet file holding every part's row groups, in part order."""
    if not parts:
        raise PartsError("no parts")
    schema = thrift.write_struct([thrift.Field(1, LIST, get(parts[0].meta, FMD_SCHEMA))])
    ranges: list[tuple[int, int]] = []
    position = 0
    groups: list[Struct] = []
    moves: list[int] = []
    for k, part in enumerate(parts):
        this = thrift.write_struct([thrift.Field(1, LIST, get(part.meta, FMD_SCHEMA))])
        if this != schema:
            raise PartsError(f"part {k} has another schema than part 0")
        start = 0 if k == 0 else len(MAGIC)
        ranges.append((start, part.data_end))
        delta = position - start
        position += part.data_end - start
        moves.append(delta)
        for rg in (get(part.meta, FMD_ROW_GROUPS) or thrift.Seq(12, [])).values:
            _move_group(rg, delta)
            groups.append(rg)
    tail = bytearray()
    for part, delta in zip(parts, moves, strict=True):
        for cc in _chunks(part.meta):
            _move_indexes(cc, part, delta, position + len(tail), tail)
    meta = parts[0].meta
    for ordinal, rg in enumerate(groups):
        put(rg, RG_ORDINAL, I16, ordinal)
    put(meta, FMD_ROW_GROUPS, LIST, thrift.Seq(12, groups))
    put(meta, FMD_NUM_ROWS, I64, sum(get(p.meta, FMD_NUM_ROWS) or 0 for p in parts))
    footer = thrift.write_struct(meta)
    tail += footer + len(footer).to_bytes(4, "little") + MAGIC
    return ranges, bytes(tail)


def _shift(fields: Struct, fid: int, delta: int) -> None:
    value = get(fields, fid)
    if value is not None:
        put(fields, fid, I64, value + delta)


def _move_group(rg: Struct, delta: int) -> None:
    _shift(rg, RG_FILE_OFFSET, delta)
    for cc in get(rg, RG_COLUMNS).values:
        _shift(cc, CC_FILE_OFFSET, delta)
        md = get(cc, CC_META)
        if md is not None:
            for fid in (MD_DATA_PAGE, MD_INDEX_PAGE, MD_DICTIONARY_PAGE):
                _shift(md, fid, delta)


def _move_indexes(cc: Struct, part: PartFile, delta: int, at: int, tail: bytearray) -> None:
    """Append the chunk's column index (as it was) and offset index (its pages moved by
    ``delta``) to ``tail`` (which starts ``at - len(tail)`` in the file); point the chunk at
    them."""
    column_index, length = get(cc, CC_COLUMN_INDEX), get(cc, CC_COLUMN_INDEX_LEN)
    if column_index is not None and length:
        local = column_index - part.index_start
        put(cc, CC_COLUMN_INDEX, I64, at)
        tail += part.indexes[local : local + length]
        at += length
    offset_index = get(cc, CC_OFFSET_INDEX)
    if offset_index is not None:
        index, _ = thrift.read_struct(part.indexes, offset_index - part.index_start)
        for location in get(index, OI_PAGE_LOCATIONS).values:
            _shift(location, PL_OFFSET, delta)
        encoded = thrift.write_struct(index)
        put(cc, CC_OFFSET_INDEX, I64, at)
        put(cc, CC_OFFSET_INDEX_LEN, I32, len(encoded))
        tail += encoded
