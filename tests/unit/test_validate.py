"""Validate: cheap structural checks on a staged object, reading only a bounded prefix."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tasks.adapters.s3 import S3Store
from tasks.errors import InvalidFile, SourceChanged, SourceMissing, UnsupportedFormat
from tasks.models import FileSpec, ObjectRef, Plan, Target
from tasks.settings import ValidateSettings
from tasks.validate import handler as validate_handler
from tasks.validate.domain import PREFIX_BYTES, validate
from tests.unit.conftest import OUTPUT, STAGING, fresh, put

SETTINGS = ValidateSettings(output_bucket=OUTPUT)


class SpyStore(S3Store):
    """The real adapter, remembering how much it was asked to read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[int] = []

    def read_prefix(self, ref: ObjectRef, length: int) -> bytes:
        self.reads.append(length)
        return super().read_prefix(ref, length)

    def open_stream(self, ref: ObjectRef) -> Any:
        raise AssertionError("validate must not stream the whole object")


@pytest.fixture
def store(s3: Any) -> SpyStore:
    return SpyStore()


def invalid(store: S3Store, source: ObjectRef, settings: ValidateSettings = SETTINGS) -> str:
    with pytest.raises(InvalidFile) as caught:
        validate(source, store, settings)
    return str(caught.value)


# --- accepted files -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key",
    [
        "incoming/orders.csv",
        "incoming/monthly report (2024).csv",
        "incoming/a+b=c.csv",
        "incoming/100% done.csv",
        "incoming/déjà vu/日本.csv",
        "incoming/DATA.CSV",
    ],
)
def test_valid_csv_gets_a_plan_with_the_current_object(s3: Any, store: SpyStore, key: str) -> None:
    # GIVEN a staged CSV under a key with spaces, '+', '%', unicode or an uppercase suffix
    source = put(s3, key, b"id,name\n1,alice\n")

    # WHEN validated
    plan = validate(source, store, SETTINGS)

    # THEN the plan reads it as CSV and writes next to the same key in the output bucket
    assert plan == Plan(
        file=FileSpec(ref=source, format="csv", compression="none"),
        target=Target(bucket=OUTPUT, key=f"{key}.jsonl"),
    )


def test_valid_tsv_is_parsed_with_tabs(s3: Any, store: SpyStore) -> None:
    # GIVEN a TSV whose column names contain commas
    source = put(s3, "incoming/x.tsv", b"id\tname, full\n1\talice\n")

    plan = validate(source, store, SETTINGS)

    assert plan.file.format == "tsv"
    assert plan.file.delimiter == "\t"


def test_valid_gzip_csv(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/ORDERS.CSV.GZ", gzip.compress(b"id,name\n1,alice\n"))

    plan = validate(source, store, SETTINGS)

    assert (plan.file.format, plan.file.compression) == ("csv", "gzip")
    assert plan.target == Target(bucket=OUTPUT, key="incoming/ORDERS.CSV.jsonl")


def test_header_with_bom_quotes_and_crlf_is_fine(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b'\xef\xbb\xbf"id","name, full"\r\n1,"a"\r\n')
    assert validate(source, store, SETTINGS).file.format == "csv"


def test_header_only_file_without_line_break_is_fine(s3: Any, store: SpyStore) -> None:
    # GIVEN a file that is only a header (no rows, no trailing newline)
    source = put(s3, "incoming/x.csv", b"id,name")
    assert validate(source, store, SETTINGS).file.ref.size == 7


def test_only_a_bounded_prefix_is_read(s3: Any, store: SpyStore) -> None:
    # GIVEN a 1 MiB file
    body = b"id,name\n" + b"1,alice\n" * (1024 * 1024 // 8)
    source = put(s3, "incoming/big.csv", body)

    # WHEN validated  THEN exactly one ranged read of PREFIX_BYTES happened
    validate(source, store, SETTINGS)
    assert store.reads == [PREFIX_BYTES]


def test_large_gzip_is_checked_from_its_prefix_only(s3: Any, store: SpyStore) -> None:
    # GIVEN a gzip file far larger than the prefix (incompressible rows), so the prefix cuts
    # the deflate stream in the middle
    rows = b"".join(os.urandom(48).hex().encode() + b"\n" for _ in range(20_000))
    body = gzip.compress(b"payload\n" + rows)
    assert len(body) > 4 * PREFIX_BYTES
    source = put(s3, "incoming/big.csv.gz", body)

    # WHEN validated  THEN the truncated stream is accepted and only the prefix was read
    assert validate(source, store, SETTINGS).file.compression == "gzip"
    assert store.reads == [PREFIX_BYTES]


def test_concatenated_gzip_members_are_followed(s3: Any, store: SpyStore) -> None:
    # GIVEN a header split over two gzip members (as `cat a.gz b.gz` produces)
    source = put(s3, "incoming/x.csv.gz", gzip.compress(b"id,na") + gzip.compress(b"me\n1,a\n"))
    assert validate(source, store, SETTINGS).file.compression == "gzip"


def test_gzip_bomb_decompresses_only_the_prefix(s3: Any, store: SpyStore) -> None:
    # GIVEN 64 KiB of gzip that would inflate to ~64 MiB of one line with no line break
    source = put(s3, "incoming/bomb.csv.gz", gzip.compress(b"a" * (64 * 1024 * 1024)))

    # WHEN validated  THEN it fails on the bounded decompressed prefix
    message = invalid(store, source)
    assert message.endswith(
        f"no header line in the first {PREFIX_BYTES} bytes of decompressed content"
    )


def test_the_plan_carries_the_version_when_the_bucket_is_versioned(
    s3: Any, store: SpyStore
) -> None:
    s3.put_bucket_versioning(Bucket=STAGING, VersioningConfiguration={"Status": "Enabled"})
    source = put(s3, "incoming/x.csv", b"a,b\n")
    assert source.version_id

    plan = validate(source, store, SETTINGS)

    assert plan.file.ref.version_id == source.version_id


def test_an_event_without_etag_gets_the_current_one(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b"a,b\n")
    announced = ObjectRef(bucket=STAGING, key=source.key, size=0)

    plan = validate(announced, store, SETTINGS)

    assert plan.file.ref.etag == source.etag
    assert plan.file.ref.size == source.size


# --- stale events -------------------------------------------------------------------------------
def test_missing_object_is_source_missing(s3: Any, store: SpyStore) -> None:
    with pytest.raises(SourceMissing):
        validate(ObjectRef(bucket=STAGING, key="incoming/gone.csv", size=3), store, SETTINGS)


def test_replaced_object_is_source_changed(s3: Any, store: SpyStore) -> None:
    # GIVEN the event of a first upload, then an overwrite of the key
    first = put(s3, "incoming/x.csv", b"a,b\n")
    second = put(s3, "incoming/x.csv", b"a,b,c\n")

    # WHEN the first event is validated  THEN SourceChanged names both eTags
    with pytest.raises(SourceChanged) as caught:
        validate(first, store, SETTINGS)
    assert first.etag and second.etag
    assert first.etag in str(caught.value)
    assert second.etag in str(caught.value)


def test_quoted_etag_in_the_event_still_matches(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b"a,b\n")
    quoted = ObjectRef(bucket=STAGING, key=source.key, size=source.size, etag=f'"{source.etag}"')
    assert validate(quoted, store, SETTINGS).file.ref.etag == source.etag


# --- rejected files -----------------------------------------------------------------------------
def test_suffix_not_configured_is_unsupported(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.tsv", b"a\tb\n")
    only_csv = ValidateSettings(output_bucket=OUTPUT, suffixes=(".csv",))

    with pytest.raises(UnsupportedFormat) as caught:
        validate(source, store, only_csv)
    assert "suffix not accepted (accepted: .csv)" in str(caught.value)


def test_configured_suffix_chute_cannot_read_is_unsupported(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/notes.txt", b"a,b\n")
    with pytest.raises(UnsupportedFormat):
        validate(source, store, ValidateSettings(output_bucket=OUTPUT, suffixes=(".txt",)))


def test_empty_file(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b"")
    assert invalid(store, source) == f"s3://{STAGING}/incoming/x.csv: the file is empty (0 bytes)"


def test_too_large_file(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b"a,b\n1,2\n")
    small = ValidateSettings(output_bucket=OUTPUT, max_file_bytes=5)

    assert invalid(store, source, small).endswith(
        "the file has 8 bytes, more than the limit of 5 bytes"
    )
    assert store.reads == [], "the size is checked before reading"


def test_gz_suffix_without_gzip_content(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv.gz", b"a,b\n1,2\n")
    assert invalid(store, source).endswith(
        "not gzip (the first bytes are 612c, gzip starts with 1f8b)"
    )


def test_corrupt_gzip(s3: Any, store: SpyStore) -> None:
    # GIVEN gzip magic followed by garbage
    source = put(s3, "incoming/x.csv.gz", b"\x1f\x8b\x08\x00" + b"\xff" * 40)
    assert "corrupt gzip data" in invalid(store, source)


def test_truncated_small_gzip(s3: Any, store: SpyStore) -> None:
    # GIVEN a whole file that is a gzip stream cut short (it fits in the prefix)
    data = gzip.compress(b"id,name\n" + b"1,alice\n" * 1000)
    source = put(s3, "incoming/x.csv.gz", data[: len(data) // 2])
    assert invalid(store, source).endswith("the gzip stream is truncated")


def test_no_header_line_in_the_prefix(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b"a" * (PREFIX_BYTES + 10) + b"\n")
    assert invalid(store, source).endswith(f"no header line in the first {PREFIX_BYTES} bytes")


@pytest.mark.parametrize("body", [b"\n1,2\n", b"   \r\n1,2\n", b"\xef\xbb\xbf\n1,2\n"])
def test_empty_header_line(s3: Any, store: SpyStore, body: bytes) -> None:
    source = put(s3, "incoming/x.csv", body)
    assert invalid(store, source).endswith("the header line (first line) is empty")


def test_header_not_utf8(s3: Any, store: SpyStore) -> None:
    # GIVEN a Latin-1 header ("café")
    source = put(s3, "incoming/x.csv", "id,café\n1,2\n".encode("latin-1"))
    assert invalid(store, source).endswith(
        "the header line is not valid UTF-8 (byte 0xe9 at offset 6)"
    )


def test_header_utf16(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", "id,name\n1,2\n".encode("utf-16"))
    assert invalid(store, source).endswith(
        "the header is UTF-16 encoded (byte order mark); use UTF-8"
    )


def test_a_cut_multibyte_character_after_the_header_is_fine(s3: Any, store: SpyStore) -> None:
    # GIVEN a valid header and a row whose 2-byte character is cut by the prefix boundary
    body = b"id,name\n" + b"x" * (PREFIX_BYTES - 9) + "é".encode() + b"\n"
    source = put(s3, "incoming/x.csv", body)
    assert validate(source, store, SETTINGS).file.format == "csv"


def test_empty_column_names(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b"id,,name, \n1,2,3,4\n")
    assert invalid(store, source).endswith(
        "the header has an empty column name at position 2, 4 (of 4 columns)"
    )


def test_duplicate_column_names(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b"id,name,id,x,name,id\n")
    assert invalid(store, source).endswith(
        "the header has duplicate column names: 'id' (columns 1, 3, 6); 'name' (columns 2, 5)"
    )


def test_duplicates_are_found_with_the_right_delimiter(s3: Any, store: SpyStore) -> None:
    # GIVEN a TSV with two identical names, each containing a comma
    source = put(s3, "incoming/x.tsv", b"a,b\ta,b\n")
    assert "duplicate column names: 'a,b' (columns 1, 2)" in invalid(store, source)


def test_unparseable_header(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b'id,"na"me\n')
    assert "the header line can't be parsed" in invalid(store, source)


def test_errors_name_the_object(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/déjà vu/DATA.CSV", b"a,a\n")
    assert invalid(store, source).startswith(f"s3://{STAGING}/incoming/déjà vu/DATA.CSV: ")


# --- handler ------------------------------------------------------------------------------------
@pytest.fixture
def env(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CHUTE_OUTPUT_BUCKET", OUTPUT)
    monkeypatch.delenv("CHUTE_SUFFIXES", raising=False)
    monkeypatch.delenv("CHUTE_MAX_FILE_BYTES", raising=False)
    with fresh(validate_handler._settings, validate_handler._store):
        yield


def test_handler_returns_the_plan_dict(s3: Any, env: None) -> None:
    # GIVEN the state machine's input to Validate
    source = put(s3, "incoming/a b+c%.csv", b"id,name\n1,a\n")
    event = {"source": source.to_dict(), "execution": "a-b-c-csv-0123"}

    # WHEN the handler runs
    result = validate_handler.handler(event, None)

    # THEN it returns the Plan as a dict, in the documented shape
    assert result == {
        "file": {**source.to_dict(), "format": "csv", "compression": "none"},
        "target": {"bucket": OUTPUT, "key": "incoming/a b+c%.csv.jsonl", "format": "jsonl"},
    }
    assert Plan.from_dict(result).file.ref == source


def test_handler_raises_the_contract_error_class(s3: Any, env: None) -> None:
    # GIVEN an empty file  WHEN the handler runs  THEN InvalidFile (the ErrorEquals name) escapes
    source = put(s3, "incoming/x.csv", b"")
    with pytest.raises(InvalidFile):
        validate_handler.handler({"source": source.to_dict(), "execution": "x"}, None)
