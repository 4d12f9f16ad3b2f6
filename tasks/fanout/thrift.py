"""Thrift's compact protocol, read and written generically: enough to rewrite offsets in a
Parquet footer without a schema of every structure (unknown fields round-trip unchanged).

A struct is a list of :class:`Field` (id, wire type, value); a list or set is a :class:`Seq`
(element type, values); a map a :class:`Table`. Booleans are carried in the field's type.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

BOOL_TRUE, BOOL_FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(1, 13)


class ThriftError(ValueError):
    """The bytes are not a compact-protocol struct."""


@dataclass
class Field:
    id: int
    type: int
    value: Any


@dataclass
class Seq:
    type: int
    values: list[Any]


@dataclass
class Table:
    key_type: int
    value_type: int
    items: list[tuple[Any, Any]]


Struct = list[Field]


class _Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ThriftError("unexpected end of data")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise ThriftError("varint too long")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ThriftError("unexpected end of data")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def value(self, ttype: int) -> Any:
        if ttype in (BOOL_TRUE, BOOL_FALSE):  # inside a list/set/map: one byte
            return self.byte() == BOOL_TRUE
        if ttype == BYTE:
            return self.byte()
        if ttype in (I16, I32, I64):
            return self.zigzag()
        if ttype == DOUBLE:
            return struct.unpack("<d", self.take(8))[0]
        if ttype == BINARY:
            return self.take(self.varint())
        if ttype in (LIST, SET):
            header = self.byte()
            size, etype = header >> 4, header & 0x0F
            if size == 15:
                size = self.varint()
            return Seq(etype, [self.value(etype) for _ in range(size)])
        if ttype == MAP:
            size = self.varint()
            if size == 0:
                return Table(0, 0, [])
            kinds = self.byte()
            k, v = kinds >> 4, kinds & 0x0F
            return Table(k, v, [(self.value(k), self.value(v)) for _ in range(size)])
        if ttype == STRUCT:
            return self.struct()
        raise ThriftError(f"unknown wire type {ttype}")

    def struct(self) -> Struct:
        fields: Struct = []
        last = 0
        while True:
            header = self.byte()
            if header == 0:
                return fields
            delta, ttype = header >> 4, header & 0x0F
            fid = last + delta if delta else self.zigzag()
            if ttype in (BOOL_TRUE, BOOL_FALSE):
                fields.append(Field(fid, ttype, ttype == BOOL_TRUE))
            else:
                fields.append(Field(fid, ttype, self.value(ttype)))
            last = fid


def read_struct(data: bytes, pos: int = 0) -> tuple[Struct, int]:
    """The struct at ``pos`` and the offset after it."""
    reader = _Reader(data, pos)
    return reader.struct(), reader.pos


def _varint(n: int, out: bytearray) -> None:
    while True:
        if n < 0x80:
            out.append(n)
            return
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def _zigzag(n: int, out: bytearray) -> None:
    _varint((n << 1) ^ (n >> 63), out)


def _write_value(ttype: int, value: Any, out: bytearray) -> None:
    if ttype in (BOOL_TRUE, BOOL_FALSE):
        out.append(BOOL_TRUE if value else BOOL_FALSE)
    elif ttype == BYTE:
        out.append(value & 0xFF)
    elif ttype in (I16, I32, I64):
        _zigzag(value, out)
    elif ttype == DOUBLE:
        out += struct.pack("<d", value)
    elif ttype == BINARY:
        _varint(len(value), out)
        out += value
    elif ttype in (LIST, SET):
        size = len(value.values)
        if size < 15:
            out.append((size << 4) | value.type)
        else:
            out.append(0xF0 | value.type)
            _varint(size, out)
        for item in value.values:
            _write_value(value.type, item, out)
    elif ttype == MAP:
        _varint(len(value.items), out)
        if value.items:
            out.append((value.key_type << 4) | value.value_type)
            for k, v in value.items:
                _write_value(value.key_type, k, out)
                _write_value(value.value_type, v, out)
    elif ttype == STRUCT:
        _write_struct(value, out)
    else:
        raise ThriftError(f"unknown wire type {ttype}")


def _write_struct(fields: Struct, out: bytearray) -> None:
    last = 0
    for f in fields:
        ttype = (BOOL_TRUE if f.value else BOOL_FALSE) if f.type in (1, 2) else f.type
        delta = f.id - last
        if 0 < delta <= 15:
            out.append((delta << 4) | ttype)
        else:
            out.append(ttype)
            _zigzag(f.id, out)
        if ttype not in (BOOL_TRUE, BOOL_FALSE):
            _write_value(ttype, f.value, out)
        last = f.id
    out.append(0)


def write_struct(fields: Struct) -> bytes:
    out = bytearray()
    _write_struct(fields, out)
    return bytes(out)


def get(fields: Struct, fid: int) -> Any:
    """The value of field ``fid`` (None if absent)."""
    for f in fields:
        if f.id == fid:
            return f.value
    return None


def put(fields: Struct, fid: int, ttype: int, value: Any) -> None:
    """Set field ``fid`` (added in id order if absent)."""
    for f in fields:
        if f.id == fid:
            f.value = value
            return
    fields.append(Field(fid, ttype, value))
    fields.sort(key=lambda f: f.id)
