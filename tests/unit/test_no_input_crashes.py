"""Every byte sequence either converts or raises a ChuteError subclass (a named error the
workflow classifies): never a native panic or another exception, which would end the worker
process (Runtime.ExitError) or the Batch job (exit 70) with no report.

Validate and convert run in-process on generated content (random bytes, CSV-ish bytes), plain
and under every compression wrapper, truncated or not, with small decompression limits.
"""

from __future__ import annotations

import bz2
import gzip
import io
from collections.abc import Callable

import zstandard
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tasks.convert.domain import engine_options
from tasks.convert.engine import EngineOptions, convert_restarting, convert_stream
from tasks.errors import ChuteError, PermanentError
from tasks.formats.keys import from_extension
from tasks.models import Head, ObjectRef
from tasks.settings import DecompressionLimits, ValidateSettings
from tasks.validate.domain import validate

WRAPPERS: dict[str, Callable[[bytes], bytes]] = {
    ".csv": lambda data: data,
    ".csv.gz": gzip.compress,
    ".csv.zst": zstandard.compress,
    ".csv.bz2": bz2.compress,
}
LIMITS = DecompressionLimits(max_bytes=64 * 1024, max_ratio=50, grace_bytes=4096)
SETTINGS = ValidateSettings(
    output_bucket="out", output_formats=("jsonl", "parquet"), decompression=LIMITS
)
# Bytes that matter to a CSV reader or a decoder, and a few names.
PIECES = [b",", b";", b"\t", b"|", b'"', b'""', b"\n", b"\r\n", b"\r", b"\x00", b" "]
PIECES += [b"id", b"a", b"1", b"\xff", b"\xc3", b"\xa9", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"]
PIECES += [b"\xc0\xaf", b"\xed\xa0\x80", b"\x1f\x8b", b"(\xb5/\xfd", b"BZh91AY&SY"]


class Staged:
    """The validate step's view of one staged object."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def head(self, ref: ObjectRef) -> Head:
        return Head(size=len(self.data), etag="etag", version_id=None)

    def read_current(self, bucket: str, key: str, length: int) -> tuple[Head, bytes] | None:
        return self.head(ObjectRef(bucket=bucket, key=key, size=0)), self.data[:length]

    def read_prefix(self, ref: ObjectRef, length: int) -> bytes:
        return self.data[:length]


def validate_and_convert(key: str, data: bytes) -> None:
    """Both steps as the workflow runs them; the engine also without validation (a Batch job
    trusts its plan, so the engine must stand on its own)."""
    try:
        ref = ObjectRef(bucket="staging", key=key, size=len(data))
        plan = validate(ref, Staged(data), SETTINGS)
    except ChuteError:
        options = engine_options_for(key)
    else:
        options = engine_options(plan, None, LIMITS)
    # as convert() runs it: a value an inferred type doesn't hold converts again, wider
    sinks = {"jsonl": _discard, "parquet": _discard}
    convert_restarting(lambda o: convert_stream(io.BytesIO(data), o, sinks), options)


def engine_options_for(key: str) -> EngineOptions:
    return EngineOptions(
        outputs=("jsonl", "parquet"), compression=from_extension(key), limits=LIMITS
    )


def _discard(data: bytes) -> None:
    pass


csvish = st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join)
simple_row = st.sampled_from([b"1", b"x", b"1,2", b"a,\x00", b'"q",2', b"1,2,3"])
header_then_rows = st.tuples(
    st.lists(
        st.sampled_from([b"id", b"name", b"a\x00", b"\x00", b"", b"x y"]),
        min_size=1,
        max_size=3,
        unique=True,
    ),
    st.lists(st.one_of(simple_row, csvish), max_size=6),
).map(lambda parts: b",".join(parts[0]) + b"\n" + b"\n".join(parts[1]))
content = st.one_of(st.binary(max_size=300), csvish, header_then_rows)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(
    data=content,
    suffix=st.sampled_from(sorted(WRAPPERS)),
    wrap=st.booleans(),
    cut=st.one_of(st.none(), st.floats(min_value=0.05, max_value=0.95)),
)
# The root causes found so far, always tried: NUL bytes in a column name (polars panicked when
# handing the names to Arrow), UTF-16LE without a byte order mark (the same, through its NULs),
# a late value that widens an inferred type (the engine's restart, not an error).
@example(data=b"a\x00b,c\n1,2\n", suffix=".csv", wrap=False, cut=None)
@example(data="id,name\n1,x\n".encode("utf-16-le"), suffix=".csv.gz", wrap=True, cut=None)
@example(data=b"\x01\n0\n\x00", suffix=".csv", wrap=False, cut=None)
def test_any_bytes_convert_or_raise_a_named_chute_error(
    data: bytes, suffix: str, wrap: bool, cut: float | None
) -> None:
    # GIVEN any content, compressed as its name says (or not), maybe truncated
    body = WRAPPERS[suffix](data) if wrap else data
    if cut is not None and len(body) > 1:
        body = body[: max(1, int(len(body) * cut))]
    if not body:
        return
    # WHEN validated and converted THEN it converts or raises a ChuteError, nothing else
    try:
        validate_and_convert(f"in/fuzz{suffix}", body)
    except ChuteError as exc:
        assert isinstance(exc, PermanentError), exc
        assert "Traceback" not in str(exc)


@settings(max_examples=25, deadline=None, database=None)
@given(rows=st.integers(min_value=3000, max_value=20000), suffix=st.sampled_from([".gz", ".zst"]))
def test_highly_compressible_content_is_stopped_by_the_limits_not_a_crash(
    rows: int, suffix: str
) -> None:
    body = WRAPPERS[f".csv{suffix}"](b"a,b\n" + b"0,0\n" * rows)
    try:
        validate_and_convert(f"in/bomb.csv{suffix}", body)
    except ChuteError as exc:
        assert type(exc).__name__ == "DecompressionLimitExceeded", exc
