"""The bad-input corpus: generated files, each with the outcome chute promises for it.

Every case passes through the real state machine (tests/workflow/test_corpus.py). An expectation
says how the execution ends (``outcome``: SUCCEEDED / QUARANTINED / IGNORED = no execution at
all), the error name, where the original ends up (archive + outputs, quarantine + report, or
staging), and what the report must say (``mentions``: e.g. the row and column).

Generated, not stored: deterministic (seeded) and cheap (the bombs are built by repeating one
compressed member/frame, as concatenated gzip/bzip2 members and zstd frames are valid files).
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import zstandard

SUCCEEDED = "SUCCEEDED"
QUARANTINED = "QUARANTINED"
IGNORED = "IGNORED"  # the trigger starts no execution (a suffix chute doesn't accept)

PREFIX = "corpus/"


@dataclass(frozen=True)
class Case:
    name: str
    key: str
    body: bytes
    outcome: str
    error: str | None = None
    failed_state: str | None = None  # Validate / ConvertInLambda / ConvertInBatch
    mentions: tuple[str, ...] = ()
    """Substrings of the report's message (or the cause): row, column, the reason."""
    rows: int | None = None
    """For SUCCEEDED: the rows in the JSON Lines output."""
    category: str = ""
    notes: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _good(rows: int = 2, columns: tuple[str, ...] = ("id", "name")) -> bytes:
    lines = [",".join(columns)] + [f"{i},n{i}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=19).compress(data)


def _bomb(kind: str, megabytes: int = 80) -> bytes:
    """``megabytes`` MiB of ``0,0`` rows (plus a header): one compressed MiB, repeated."""
    mib = b"0,0\n" * (256 * 1024)
    compress: Callable[[bytes], bytes] = {
        "gzip": lambda d: gzip.compress(d, 9, mtime=0),
        "zstd": _zstd,
        "bz2": lambda d: bz2.compress(d, 9),
    }[kind]
    return compress(b"a,b\n") + compress(mib) * megabytes


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.csv", _good(50))
    return buffer.getvalue()


def _pdf() -> bytes:
    return (
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


def _elf() -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + bytes(range(256))


def _corrupt(data: bytes, at: float = 0.5) -> bytes:
    """``data`` with a run of bytes in the middle inverted."""
    middle = int(len(data) * at)
    flipped = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    return data[:middle] + flipped + data[middle + 8 :]


def _incompressible_rows(rows: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return b"".join(f"{i},{rng.getrandbits(128):032x}\n".encode() for i in range(rows))


def cases() -> list[Case]:
    """Every case of the corpus (keys are unique and under :data:`PREFIX`)."""
    found = list(_cases())
    keys = [c.key for c in found]
    assert len(keys) == len(set(keys)), "duplicate corpus keys"
    return found


def _cases() -> Iterator[Case]:
    p = PREFIX
    v, lam, batch = "Validate", "ConvertInLambda", "ConvertInBatch"
    invalid, malformed = "InvalidFile", "MalformedContent"
    q = QUARANTINED

    # --- structure ------------------------------------------------------------------------------
    cat = "structure"
    yield Case("empty", f"{p}s/empty.csv", b"", q, invalid, v, ("empty (0 bytes)",), category=cat)
    yield Case(
        "header only", f"{p}s/header-only.csv", b"id,name\n", SUCCEEDED, rows=0, category=cat
    )
    yield Case(
        "header only, no line break",
        f"{p}s/header-no-eol.csv",
        b"id,name",
        SUCCEEDED,
        rows=0,
        category=cat,
    )
    yield Case(
        "blank lines only",
        f"{p}s/blank-only.csv",
        b"\n\n\n",
        q,
        invalid,
        v,
        ("header line (first line) is empty",),
        category=cat,
    )
    yield Case(
        "blank lines between rows",
        f"{p}s/blank-between.csv",
        b"id,name\n1,a\n\n\n2,b\n\n",
        SUCCEEDED,
        rows=2,
        category=cat,
    )
    yield Case(
        "whitespace-only line",
        f"{p}s/whitespace-line.csv",
        b"id,name\n1,a\n   \n2,b\n",
        q,
        malformed,
        lam,
        ("row 3", "expected 2 fields"),
        category=cat,
    )
    yield Case(
        "ragged row, short",
        f"{p}s/ragged-short.csv",
        b"a,b,c\n1,2,3\n4,5\n",
        q,
        malformed,
        lam,
        ("row 3", "expected 3 fields as in the header, found 2"),
        category=cat,
    )
    yield Case(
        "ragged row, long",
        f"{p}s/ragged-long.csv",
        b"a,b\n1,2\n3,4\n5,6,7\n",
        q,
        malformed,
        lam,
        ("row 4", "found 3"),
        category=cat,
    )
    yield Case(
        "ragged row deep in a large file",
        f"{p}s/ragged-deep.csv",
        b"id,v\n" + _incompressible_rows(4999, 1) + b"5000,x,extra\n" + _incompressible_rows(5, 2),
        q,
        malformed,
        batch,
        ("row 5001", "found 3"),
        category=cat,
    )
    yield Case(
        "unterminated quote in the header",
        f"{p}s/quote-header.csv",
        b'id,"name\n1,2\n',
        q,
        invalid,
        v,
        ("the header line never ends", "not closed"),
        category=cat,
    )
    yield Case(
        "unterminated quote in the last row",
        f"{p}s/quote-last.csv",
        b'id,name\n1,a\n2,"b\n',
        q,
        malformed,
        lam,
        ("row 3", "ends inside a quoted field"),
        category=cat,
    )
    yield Case(
        "unterminated quote in a large file",
        f"{p}s/quote-deep.csv",
        b"id,v\n"
        + _incompressible_rows(3000, 3)
        + b'3001,"never closed\n'
        + _incompressible_rows(100, 4),
        q,
        malformed,
        batch,
        ("row 3002",),
        category=cat,
    )
    yield Case(
        "carriage return outside quotes",
        f"{p}s/bare-cr.csv",
        b"id,name\n1,a\rb\n",
        q,
        malformed,
        lam,
        ("row 2", "carriage return"),
        category=cat,
    )
    yield Case(
        "old Mac line endings (CR only)",
        f"{p}s/cr-only.csv",
        b"id,name\r1,a\r2,b\r",
        q,
        invalid,
        v,
        ("header line can't be parsed",),
        category=cat,
    )
    yield Case(
        "CRLF line endings",
        f"{p}s/crlf.csv",
        b"id,name\r\n1,a\r\n2,b\r\n",
        SUCCEEDED,
        rows=2,
        category=cat,
    )
    yield Case(
        "quoted newline and delimiter in the header",
        f"{p}s/quoted-header.csv",
        b'id,"full\nname, last"\n1,"a\nb"\n',
        SUCCEEDED,
        rows=1,
        category=cat,
    )
    yield Case(
        "semicolon-separated",
        f"{p}s/semicolons.csv",
        b"id;name\n1;a\n",
        SUCCEEDED,
        rows=1,
        category=cat,
    )
    yield Case(
        "a 10 MB line",
        f"{p}s/long-line.csv",
        b"id,blob\n1," + b"x" * 10_000_000 + b"\n2,y\n",
        SUCCEEDED,
        rows=2,
        category=cat,
    )
    yield Case(
        "a 10 MB header line",
        f"{p}s/long-header.csv",
        b"c" * 10_000_000 + b"\n1\n",
        q,
        invalid,
        v,
        ("no header line in the first 65536 bytes",),
        category=cat,
    )
    yield Case(
        "100,000 columns",
        f"{p}s/100k-columns.csv",
        (",".join(f"c{i}" for i in range(100_000)) + "\n").encode()
        + (",".join("1" for _ in range(100_000)) + "\n").encode(),
        q,
        invalid,
        v,
        ("no header line in the first 65536 bytes",),
        category=cat,
    )
    yield Case(
        "5,000 columns",
        f"{p}s/5k-columns.csv",
        (",".join(f"c{i}" for i in range(5000)) + "\n").encode()
        + (",".join(str(i) for i in range(5000)) + "\n").encode(),
        SUCCEEDED,
        rows=1,
        category=cat,
    )
    yield Case(
        "duplicate column names",
        f"{p}s/duplicate-names.csv",
        b"id,name,id\n1,2,3\n",
        q,
        invalid,
        v,
        ("duplicate column names", "'id' (columns 1, 3)"),
        category=cat,
    )
    yield Case(
        "empty column name",
        f"{p}s/empty-name.csv",
        b"id,,name\n1,2,3\n",
        q,
        invalid,
        v,
        ("empty column name at position 2",),
        category=cat,
    )
    yield Case(
        "blank column name",
        f"{p}s/blank-name.csv",
        b"id,  \n1,2\n",
        q,
        invalid,
        v,
        ("empty column name at position 2",),
        category=cat,
    )
    yield Case(
        "header of delimiters only",
        f"{p}s/delimiters-only.csv",
        b",,,\n1,2,3,4\n",
        q,
        invalid,
        v,
        ("empty column name at position 1, 2, 3, 4",),
        category=cat,
    )

    # --- NUL bytes ------------------------------------------------------------------------------
    cat = "NUL bytes"
    yield Case(
        "NUL in the header",
        f"{p}n/nul-header.csv",
        b"id,na\x00me\n1,2\n",
        q,
        invalid,
        v,
        ("row 1", "NUL byte (0x00) in the name of column 2"),
        category=cat,
    )
    yield Case(
        "NUL in a value",
        f"{p}n/nul-value.csv",
        b"id,name\n1,a\x00b\n",
        SUCCEEDED,
        rows=1,
        category=cat,
        notes="NUL is a character: kept as written (JSON \\u0000)",
    )
    yield Case(
        "NUL as the last byte",
        f"{p}n/nul-last.csv",
        b"id,name\n1,a\n\x00",
        q,
        malformed,
        lam,
        ("row 3", "expected 2 fields"),
        category=cat,
    )
    yield Case(
        "NUL bytes only",
        f"{p}n/nul-only.csv",
        b"\x00" * 4096,
        q,
        invalid,
        v,
        ("NUL byte (0x00) in the name of column 1",),
        category=cat,
    )

    # --- encodings ------------------------------------------------------------------------------
    cat = "encodings"
    text = "id,name\n1,Zoë\n2,Ana\n"
    for codec, name, bom in (
        ("utf-16-le", "UTF-16LE", codecs.BOM_UTF16_LE),
        ("utf-16-be", "UTF-16BE", codecs.BOM_UTF16_BE),
        ("utf-32-le", "UTF-32LE", codecs.BOM_UTF32_LE),
        ("utf-32-be", "UTF-32BE", codecs.BOM_UTF32_BE),
    ):
        yield Case(
            f"{name} with BOM",
            f"{p}e/{codec}-bom.csv",
            bom + text.encode(codec),
            q,
            invalid,
            v,
            (f"{name} encoded (byte order mark",),
            category=cat,
        )
        yield Case(
            f"{name} without BOM",
            f"{p}e/{codec}-nobom.csv",
            text.encode(codec),
            q,
            invalid,
            v,
            (f"looks {name} encoded (no byte order mark",),
            category=cat,
        )
    yield Case(
        "UTF-8 with BOM",
        f"{p}e/utf8-bom.csv",
        codecs.BOM_UTF8 + text.encode(),
        SUCCEEDED,
        rows=2,
        category=cat,
    )
    yield Case(
        "latin-1 header",
        f"{p}e/latin1-header.csv",
        "id,café\n1,2\n".encode("latin-1"),
        q,
        invalid,
        v,
        ("not valid UTF-8", "byte 0xe9 at offset 6"),
        category=cat,
    )
    yield Case(
        "latin-1 value",
        f"{p}e/latin1-value.csv",
        "id,name\n1,Zoë\n".encode("latin-1"),
        q,
        malformed,
        lam,
        ("row 2", "not valid UTF-8"),
        category=cat,
    )
    yield Case(
        "cp1252 smart quotes and euro",
        f"{p}e/cp1252.csv",
        "id,price\n1,\u201c5 \u20ac\u201d\n".encode("cp1252"),
        q,
        malformed,
        lam,
        ("row 2", "not valid UTF-8"),
        category=cat,
    )
    yield Case(
        "Shift-JIS header",
        f"{p}e/shift-jis-header.csv",
        "番号,名前\n1,2\n".encode("shift_jis"),
        q,
        invalid,
        v,
        ("not valid UTF-8",),
        category=cat,
    )
    yield Case(
        "Shift-JIS values",
        f"{p}e/shift-jis-value.csv",
        "id,name\n1,山田\n".encode("shift_jis"),
        q,
        malformed,
        lam,
        ("row 2", "not valid UTF-8"),
        category=cat,
    )
    yield Case(
        "GB18030 values",
        f"{p}e/gb18030.csv",
        "id,name\n1,张伟\n".encode("gb18030"),
        q,
        malformed,
        lam,
        ("row 2", "not valid UTF-8"),
        category=cat,
    )
    yield Case(
        "EBCDIC (cp500)",
        f"{p}e/ebcdic.csv",
        "ID,NAME\n1,ANN\n".encode("cp500"),
        q,
        invalid,
        v,
        ("not valid UTF-8",),
        category=cat,
    )
    yield Case(
        "stray UTF-8 continuation byte",
        f"{p}e/continuation.csv",
        b"id,name\n1,a\x80b\n",
        q,
        malformed,
        lam,
        ("row 2", "not valid UTF-8"),
        category=cat,
    )
    yield Case(
        "overlong UTF-8",
        f"{p}e/overlong.csv",
        b"id,path\n1,\xc0\xaf\n",
        q,
        malformed,
        lam,
        ("row 2", "not valid UTF-8"),
        category=cat,
    )
    yield Case(
        "UTF-8-encoded surrogate",
        f"{p}e/surrogate.csv",
        b"id,name\n1,\xed\xa0\x80\n",
        q,
        malformed,
        lam,
        ("row 2", "not valid UTF-8"),
        category=cat,
    )
    yield Case(
        "UTF-8 cut inside a character at the end",
        f"{p}e/cut-char.csv",
        b"id,name\n1,\xc3",
        q,
        malformed,
        lam,
        ("row 2", "not valid UTF-8"),
        category=cat,
    )

    # --- binary files under CSV names -----------------------------------------------------------
    cat = "binary under a CSV name"
    yield Case("PNG", f"{p}b/image.csv", _png(), q, invalid, v, ("not valid UTF-8",), category=cat)
    yield Case(
        "ZIP", f"{p}b/archive.csv", _zip(), q, invalid, v, ("not valid UTF-8",), category=cat
    )
    yield Case(
        "PDF",
        f"{p}b/document.csv",
        _pdf(),
        q,
        malformed,
        lam,
        ("row 2", "not valid UTF-8"),
        category=cat,
        notes="its first line is valid one-column text",
    )
    yield Case("ELF", f"{p}b/program.csv", _elf(), q, invalid, v, ("NUL byte",), category=cat)
    yield Case(
        "random bytes",
        f"{p}b/random.csv",
        random.Random(7).randbytes(4096),
        q,
        invalid,
        v,
        (),
        category=cat,
    )

    # --- compression: wrong names, truncated, corrupt --------------------------------------------
    cat = "compression"
    good = _good(20)
    gz, zst, bzd = gzip.compress(good, mtime=0), _zstd(good), bz2.compress(good)
    for kind, data, ext in (("gzip", gz, ".gz"), ("zstd", zst, ".zst"), ("bz2", bzd, ".bz2")):
        yield Case(
            f"{kind} under a plain name",
            f"{p}c/{kind}-plain-name.csv",
            data,
            q,
            invalid,
            v,
            (f"the content is {kind}-compressed but the key does not end with {ext}",),
            category=cat,
        )
        yield Case(
            f"plain text under {ext}",
            f"{p}c/plain{ext}-name.csv{ext}",
            good,
            q,
            invalid,
            v,
            (f"not {kind}",),
            category=cat,
        )
        yield Case(
            f"{kind}, correctly named",
            f"{p}c/ok{ext}.csv{ext}",  # one output each (two keys, one output: guarantees.md)
            data,
            SUCCEEDED,
            rows=20,
            category=cat,
        )
        yield Case(
            f"{kind} truncated",
            f"{p}c/truncated.csv{ext}",
            data[: len(data) * 2 // 3],
            q,
            invalid,
            v,
            ("truncated",),
            category=cat,
        )
    yield Case(
        "gzip under .zst",
        f"{p}c/gzip-as-zstd.csv.zst",
        gz,
        q,
        invalid,
        v,
        ("not zstd",),
        category=cat,
    )
    big = b"id,v\n" + _incompressible_rows(6000, 5)
    big_gz, big_zst, big_bz2 = gzip.compress(big, mtime=0), _zstd(big), bz2.compress(big)
    yield Case(
        "gzip truncated, large",
        f"{p}c/truncated-large.csv.gz",
        big_gz[: len(big_gz) // 2],
        q,
        malformed,
        batch,
        ("truncated",),
        category=cat,
    )
    yield Case(
        "zstd truncated, large",
        f"{p}c/truncated-large.csv.zst",
        big_zst[: len(big_zst) // 2],
        q,
        invalid,
        v,
        ("truncated",),
        category=cat,
        notes="validate reads 256 KiB of a zstd file: all of this one",
    )
    yield Case(
        "bz2 truncated, large",
        f"{p}c/truncated-large.csv.bz2",
        big_bz2[: len(big_bz2) // 2],
        q,
        invalid,
        v,
        ("truncated",),
        category=cat,
        notes="validate reads 1 MiB of a bzip2 file: all of this one",
    )
    yield Case(
        "gzip corrupt",
        f"{p}c/corrupt.csv.gz",
        _corrupt(big_gz),
        q,
        malformed,
        batch,
        ("corrupt",),
        category=cat,
    )
    yield Case(
        "zstd corrupt",
        f"{p}c/corrupt.csv.zst",
        _corrupt(big_zst),
        q,
        malformed,
        batch,
        ("row",),
        category=cat,
        notes="zstd without a checksum decodes the damage into text: a bad row is named",
    )
    yield Case(
        "bz2 corrupt",
        f"{p}c/corrupt.csv.bz2",
        _corrupt(big_bz2),
        q,
        malformed,
        batch,
        ("corrupt",),
        category=cat,
    )
    yield Case(
        "gzip of nothing",
        f"{p}c/empty.csv.gz",
        gzip.compress(b"", mtime=0),
        q,
        invalid,
        v,
        ("empty",),
        category=cat,
    )

    # --- decompression bombs (over the default limits) --------------------------------------------
    cat = "decompression bombs"
    limit = "DecompressionLimitExceeded"
    for kind, ext in (("gzip", ".gz"), ("zstd", ".zst"), ("bz2", ".bz2")):
        yield Case(
            f"{kind} bomb (80 MiB of rows, 1000:1)",
            f"{p}z/bomb.csv{ext}",
            _bomb(kind),
            q,
            limit,
            batch,
            ("expands more than 500 times",),
            category=cat,
        )
    yield Case(
        "gzip 1000:1 within the grace (1 MiB)",
        f"{p}z/small-zeros.csv.gz",
        gzip.compress(b"a,b\n" + b"0,0\n" * (256 * 1024), 9, mtime=0),
        SUCCEEDED,
        rows=256 * 1024,
        category=cat,
    )

    # --- hostile keys -----------------------------------------------------------------------------
    cat = "keys"
    for name, key in (
        ("spaces", f"{p}k/with  spaces .csv"),
        ("plus signs", f"{p}k/a+b+c.csv"),
        ("unicode", f"{p}k/données/日本 ü.csv"),
        ("a literal %2F", f"{p}k/a%2Fb.csv"),
        ("percent, hash, question mark", f"{p}k/100%#1?.csv"),
        ("dot-dot segments", f"{p}k/../up/../x.csv"),
        ("1,000 characters", f"{p}k/" + "k" * (1000 - len(f"{p}k/") - 4) + ".csv"),
        ("uppercase suffix", f"{p}k/LOUD.CSV"),
    ):
        yield Case(f"key: {name}", key, good, SUCCEEDED, rows=20, category=cat)
    yield Case(
        "suffix not accepted",
        f"{p}k/sheet.xlsx",
        good,
        IGNORED,
        category=cat,
        notes="the trigger starts nothing; the file stays in staging",
    )
