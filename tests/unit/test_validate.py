"""Validate: cheap structural checks on a staged object, reading only a bounded prefix."""

from __future__ import annotations

import bz2
import gzip
import json
import os
import struct
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import zstandard

from tasks.adapters.s3 import S3Store
from tasks.data_contracts.config import ContractConfigError, load_contracts
from tasks.data_contracts.model import ContractSet
from tasks.errors import (
    ContractViolation,
    InvalidFile,
    SourceMissing,
    Superseded,
    UnsupportedFormat,
)
from tasks.models import FileSpec, Head, ObjectRef, Plan, Target, upload_time
from tasks.settings import SettingsError, ValidateSettings
from tasks.validate import handler as validate_handler
from tasks.validate.domain import PREFIX_BYTES, READ_BYTES, validate
from tests.support.unit import OUTPUT, STAGING, fresh, put

SETTINGS = ValidateSettings(output_bucket=OUTPUT, output_formats=("jsonl",))


class SpyStore(S3Store):
    """The real adapter, remembering how much it was asked to read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[int] = []

    def read_current(self, bucket: str, key: str, length: int) -> tuple[Head, bytes] | None:
        self.reads.append(length)
        return super().read_current(bucket, key, length)

    def read_prefix(self, ref: ObjectRef, length: int) -> bytes:
        self.reads.append(length)
        return super().read_prefix(ref, length)

    def open_stream(self, ref: ObjectRef) -> Any:
        raise AssertionError("validate must not stream the whole object")


@pytest.fixture
def store(s3: Any) -> SpyStore:
    return SpyStore()


def invalid(
    store: S3Store,
    source: ObjectRef,
    settings: ValidateSettings = SETTINGS,
    contracts: ContractSet | None = None,
) -> str:
    with pytest.raises(InvalidFile) as caught:
        validate(source, store, settings, contracts)
    return str(caught.value)


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def incompressible_rows(count: int) -> bytes:
    """Rows of random hex: they compress about 2:1, so a short prefix holds little content."""
    return b"".join(os.urandom(48).hex().encode() + b"\n" for _ in range(count))


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

    # THEN the plan reads it as comma-separated text and writes next to the same key, as JSON Lines
    assert plan == Plan(
        file=FileSpec(ref=source, compression="none", delimiter=","),
        target=Target(bucket=OUTPUT, key=key, formats=("jsonl",), contract=None, infer=True),
        resources={"vcpu": "2", "memory": "4096"},  # the smallest Batch job: a small file
    )
    assert plan.target.object_key("jsonl") == f"{key}.jsonl"


def test_a_current_file_is_checked_and_read_in_one_request(s3: Any, store: SpyStore) -> None:
    # GIVEN a staged file that is staging's current object
    source = put(s3, "incoming/one.csv", b"id,name\n1,alice\n")
    calls: list[str] = []
    store.client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))

    # WHEN validated
    plan = validate(source, store, SETTINGS)

    # THEN one ranged GET of the current object said which version it is and gave the header
    assert calls == ["GetObject"]
    assert plan.file.ref == source


def test_read_current_gives_the_current_objects_head_and_prefix(s3: Any, store: SpyStore) -> None:
    # GIVEN two versions of a key, the second current
    put(s3, "incoming/two.csv", b"old\n")
    newer = put(s3, "incoming/two.csv", b"id,name\n1,alice\n")

    # WHEN its current object is read, fewer bytes than it holds
    found = store.read_current(STAGING, "incoming/two.csv", 4)

    # THEN the newer version's head (its whole size, from Content-Range) and its first bytes
    assert found is not None
    head, prefix = found
    assert (head.size, head.etag, head.version_id) == (16, newer.etag, newer.version_id)
    assert prefix == b"id,n"


def test_read_current_of_an_empty_object_is_its_head_and_no_bytes(s3: Any, store: SpyStore) -> None:
    # GIVEN an empty object (S3 answers a ranged GET of it with 416 InvalidRange)
    source = put(s3, "incoming/empty.csv", b"")

    # WHEN its current object is read  THEN its head, and no bytes
    found = store.read_current(STAGING, "incoming/empty.csv", 1024)
    assert found is not None
    assert (found[0].size, found[0].version_id, found[1]) == (0, source.version_id, b"")


def test_read_current_reads_an_object_written_after_the_empty_one_it_met(
    s3: Any, store: SpyStore
) -> None:
    # GIVEN an empty object replaced by one with bytes between S3's 416 for the empty one and
    # the HEAD that follows it
    put(s3, "incoming/raced.csv", b"")
    raced = False

    def replace_after_416(parsed: dict[str, Any], **_: Any) -> None:
        nonlocal raced
        if not raced and parsed.get("Error", {}).get("Code") == "InvalidRange":
            raced = True
            s3.put_object(Bucket=STAGING, Key="incoming/raced.csv", Body=b"id,name\n1,alice\n")

    store.client.meta.events.register("after-call.s3.GetObject", replace_after_416)

    # WHEN its current object is read
    found = store.read_current(STAGING, "incoming/raced.csv", 1024)

    # THEN the newer object's head and its bytes, never its head with the empty one's bytes
    assert raced
    assert found is not None
    assert (found[0].size, found[1]) == (16, b"id,name\n1,alice\n")


def test_read_current_of_a_deleted_key_is_none(s3: Any, store: SpyStore) -> None:
    # GIVEN a key never written, and one whose object was deleted (a delete marker on top)
    put(s3, "incoming/gone.csv", b"a\n")
    s3.delete_object(Bucket=STAGING, Key="incoming/gone.csv")

    # WHEN their current objects are read  THEN there is none
    assert store.read_current(STAGING, "incoming/gone.csv", 10) is None
    assert store.read_current(STAGING, "incoming/never.csv", 10) is None


def test_a_ref_without_an_event_time_gets_the_objects_last_modified(
    s3: Any, store: SpyStore
) -> None:
    # GIVEN a ref that names no upload time (an execution started by hand)
    source = replace(put(s3, "incoming/x.csv", b"id\n1\n"), uploaded=None)
    # WHEN validated  THEN the plan's file has the object's LastModified, in the stamps' form
    uploaded = validate(source, store, SETTINGS).file.ref.uploaded
    head = s3.head_object(Bucket=STAGING, Key="incoming/x.csv")
    assert uploaded == upload_time(head["LastModified"])
    assert uploaded is not None and uploaded.endswith("Z") and len(uploaded) == 24


def test_valid_tsv_is_parsed_with_tabs(s3: Any, store: SpyStore) -> None:
    # GIVEN a TSV whose column names contain commas (more commas than tabs: not sniffed)
    source = put(s3, "incoming/x.tsv", b"id\tname, full, really\n1\talice\n")

    plan = validate(source, store, SETTINGS)

    assert plan.file.delimiter == "\t"


def test_valid_psv_is_parsed_with_pipes(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.PSV", b"id|name, full, really\n1|alice\n")
    assert validate(source, store, SETTINGS).file.delimiter == "|"


def test_valid_gzip_csv(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/ORDERS.CSV.GZ", gzip.compress(b"id,name\n1,alice\n"))

    plan = validate(source, store, SETTINGS)

    assert (plan.file.compression, plan.file.delimiter) == ("gzip", ",")
    assert plan.target == Target(bucket=OUTPUT, key="incoming/ORDERS.CSV", infer=True)
    assert plan.target.object_key("jsonl") == "incoming/ORDERS.CSV.jsonl"


def test_valid_zstd_tsv(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.TSV.ZST", zstd(b"id\tname\n1\talice\n"))

    plan = validate(source, store, SETTINGS)

    assert (plan.file.compression, plan.file.delimiter) == ("zstd", "\t")
    assert plan.target.key == "incoming/x.TSV"


def test_valid_bz2_csv(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv.bz2", bz2.compress(b"id,name\n1,alice\n"))

    plan = validate(source, store, SETTINGS)

    assert (plan.file.compression, plan.file.delimiter) == ("bz2", ",")
    assert plan.target.key == "incoming/x.csv"


def test_header_with_bom_quotes_and_crlf_is_fine(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b'\xef\xbb\xbf"id","name, full"\r\n1,"a"\r\n')
    assert validate(source, store, SETTINGS).file.delimiter == ","


def test_header_only_file_without_line_break_is_fine(s3: Any, store: SpyStore) -> None:
    # GIVEN a file that is only a header (no rows, no trailing newline)
    source = put(s3, "incoming/x.csv", b"id,name")
    assert validate(source, store, SETTINGS).file.ref.size == 7


def test_a_line_break_inside_a_quoted_column_name_does_not_end_the_header(
    s3: Any, store: SpyStore
) -> None:
    # GIVEN a header whose second name is quoted and spans two lines (the engine reads the
    # first record, not the first line, as the header)
    source = put(s3, "incoming/x.csv", b'id,"first\nname"\n1,alice\n')
    assert validate(source, store, SETTINGS).file.delimiter == ","


def test_a_header_starting_like_bzip2_is_text(s3: Any, store: SpyStore) -> None:
    # GIVEN a plain CSV whose first column happens to be called "BZh9..."
    source = put(s3, "incoming/x.csv", b"BZh91,x\n1,2\n")
    assert validate(source, store, SETTINGS).file.compression == "none"


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
    body = gzip.compress(b"payload\n" + incompressible_rows(20_000))
    assert len(body) > 4 * PREFIX_BYTES
    source = put(s3, "incoming/big.csv.gz", body)

    # WHEN validated  THEN the truncated stream is accepted and only the prefix was read
    assert validate(source, store, SETTINGS).file.compression == "gzip"
    assert store.reads == [PREFIX_BYTES]


def test_large_zstd_is_checked_from_its_prefix_only(s3: Any, store: SpyStore) -> None:
    # GIVEN a zstd file whose first block (128 KiB of content) is larger than PREFIX_BYTES
    # compressed: zstd only decodes whole blocks, so a PREFIX_BYTES read would yield nothing
    body = zstd(b"payload\n" + incompressible_rows(20_000))
    assert len(body) > 2 * READ_BYTES["zstd"]
    assert zstandard.ZstdDecompressor().decompressobj().decompress(body[:PREFIX_BYTES]) == b""
    source = put(s3, "incoming/big.csv.zst", body)

    # WHEN validated  THEN the cut stream is accepted from one bounded read
    assert validate(source, store, SETTINGS).file.compression == "zstd"
    assert store.reads == [READ_BYTES["zstd"]]


def test_large_bz2_is_checked_from_its_prefix_only(s3: Any, store: SpyStore) -> None:
    # GIVEN a bzip2 file of several blocks (900 kB of content each, ~500 kB compressed here):
    # bzip2 only decodes whole blocks
    body = bz2.compress(b"payload\n" + incompressible_rows(50_000))
    assert len(body) > 2 * READ_BYTES["bz2"]
    assert bz2.BZ2Decompressor().decompress(body[:PREFIX_BYTES]) == b""
    source = put(s3, "incoming/big.csv.bz2", body)

    assert validate(source, store, SETTINGS).file.compression == "bz2"
    assert store.reads == [READ_BYTES["bz2"]]


def test_concatenated_gzip_members_are_followed(s3: Any, store: SpyStore) -> None:
    # GIVEN a header split over two gzip members (as `cat a.gz b.gz` produces)
    source = put(s3, "incoming/x.csv.gz", gzip.compress(b"id,na") + gzip.compress(b"me\n1,a\n"))
    assert validate(source, store, SETTINGS).file.compression == "gzip"


def test_concatenated_zstd_frames_are_followed(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv.zst", zstd(b"id,na") + zstd(b"me\n1,a\n"))
    assert validate(source, store, SETTINGS).file.compression == "zstd"


def test_a_leading_zstd_skippable_frame_is_skipped(s3: Any, store: SpyStore) -> None:
    # GIVEN a zstd file that starts with a skippable frame (pzstd writes one before each frame)
    skippable = b"\x50\x2a\x4d\x18" + struct.pack("<I", 4) + b"size"
    source = put(s3, "incoming/x.csv.zst", skippable + zstd(b"id,name\n1,a\n"))
    assert validate(source, store, SETTINGS).file.compression == "zstd"


def test_concatenated_bz2_streams_are_followed(s3: Any, store: SpyStore) -> None:
    # GIVEN a header split over two bzip2 streams (as pbzip2 or `cat a.bz2 b.bz2` produce)
    source = put(s3, "incoming/x.csv.bz2", bz2.compress(b"id,na") + bz2.compress(b"me\n1,a\n"))
    assert validate(source, store, SETTINGS).file.compression == "bz2"


@pytest.mark.parametrize(
    ("key", "compress"),
    [("bomb.csv.gz", gzip.compress), ("bomb.csv.zst", zstd), ("bomb.csv.bz2", bz2.compress)],
)
def test_compression_bomb_decompresses_only_the_prefix(
    s3: Any, store: SpyStore, key: str, compress: Any
) -> None:
    # GIVEN a small file that would inflate to 64 MiB of one line with no line break
    source = put(s3, f"incoming/{key}", compress(b"a" * (64 * 1024 * 1024)))

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


def test_output_formats_of_text_mode_come_from_the_settings(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b"a,b\n")
    both = ValidateSettings(output_bucket=OUTPUT, output_formats=("parquet", "jsonl"))

    target = validate(source, store, both).target

    assert (target.formats, target.contract) == (("parquet", "jsonl"), None)


# --- the delimiter ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "header", "expected"),
    [
        ("incoming/x.csv", b"id;name;city", ";"),
        ("incoming/x.csv", b"id|name|city", "|"),
        ("incoming/x.csv", b"id\tname", "\t"),
        ("incoming/x.txt", b"id;name", ";"),
        ("incoming/x.TXT.GZ", b"id|name", "|"),
        ("incoming/x.csv", b"id", ","),  # one column: nothing to sniff, comma
        ("incoming/x.csv", b'"a;b;c",d', ","),  # delimiters inside quotes don't count
        ("incoming/x.csv", b"\xef\xbb\xbfid;name", ";"),
    ],
)
def test_an_undeclared_delimiter_is_sniffed_from_the_header(
    s3: Any, store: SpyStore, key: str, header: bytes, expected: str
) -> None:
    # GIVEN a .csv/.txt file (the extension doesn't say the delimiter)
    body = header + b"\n1;2|3\n"
    source = put(s3, key, gzip.compress(body) if key.lower().endswith(".gz") else body)

    # WHEN validated  THEN the plan carries the delimiter found, so Lambda and Batch agree
    assert validate(source, store, SETTINGS).file.delimiter == expected


def test_the_header_is_checked_with_the_sniffed_delimiter(s3: Any, store: SpyStore) -> None:
    # GIVEN a semicolon-separated .csv with a duplicate column (one name containing a comma)
    source = put(s3, "incoming/x.csv", b"id;x;a,b;a,b\n")
    assert "duplicate column names: 'a,b' (columns 3, 4)" in invalid(store, source)


def test_the_extension_delimiter_is_not_second_guessed(s3: Any, store: SpyStore) -> None:
    # GIVEN a .tsv whose header has no tab but semicolons: a one-column TSV, as declared
    source = put(s3, "incoming/x.tsv", b"a;b\n1;2\n")
    assert validate(source, store, SETTINGS).file.delimiter == "\t"


# --- stale events -------------------------------------------------------------------------------
def test_missing_object_is_source_missing(s3: Any, store: SpyStore) -> None:
    with pytest.raises(SourceMissing):
        validate(ObjectRef(bucket=STAGING, key="incoming/gone.csv", size=3), store, SETTINGS)


def test_replaced_object_is_superseded(s3: Any, store: SpyStore) -> None:
    # GIVEN the event of a first upload, then an overwrite of the key
    first = put(s3, "incoming/x.csv", b"a,b\n")
    second = put(s3, "incoming/x.csv", b"a,b,c\n")

    # WHEN the first event is validated  THEN Superseded names the newer object
    with pytest.raises(Superseded) as caught:
        validate(first, store, SETTINGS)
    assert second.etag and second.etag in str(caught.value)


def test_a_version_replaced_in_versioned_staging_is_superseded(s3: Any, store: SpyStore) -> None:
    # GIVEN versioned staging, a first upload and a newer version of the key
    s3.put_bucket_versioning(Bucket=STAGING, VersioningConfiguration={"Status": "Enabled"})
    first = put(s3, "incoming/x.csv", b"a,b\n")
    second = put(s3, "incoming/x.csv", b"a,b,c\n")
    # WHEN the first version's event is validated (that version is still readable by id)
    with pytest.raises(Superseded) as caught:
        validate(first, store, SETTINGS)
    # THEN it is superseded by the newer version, named
    assert str(second.version_id) in str(caught.value)


def test_a_file_deleted_after_upload_is_source_missing(s3: Any, store: SpyStore) -> None:
    # GIVEN versioned staging and a file deleted right after its upload (a delete marker)
    s3.put_bucket_versioning(Bucket=STAGING, VersioningConfiguration={"Status": "Enabled"})
    source = put(s3, "incoming/x.csv", b"a,b\n1,2\n")
    s3.delete_object(Bucket=STAGING, Key="incoming/x.csv")
    # WHEN validated  THEN SourceMissing: nothing is read from a version the uploader removed
    with pytest.raises(SourceMissing) as caught:
        validate(source, store, SETTINGS)
    assert "no longer in staging" in str(caught.value)


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
    source = put(s3, "incoming/notes.json", b'{"a": 1}\n')
    with pytest.raises(UnsupportedFormat):
        validate(source, store, ValidateSettings(output_bucket=OUTPUT, suffixes=(".json",)))


def test_empty_file(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b"")
    assert invalid(store, source) == f"s3://{STAGING}/incoming/x.csv: the file is empty (0 bytes)"


def test_too_large_file(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b"a,b\n1,2\n")
    small = ValidateSettings(output_bucket=OUTPUT, max_file_bytes=5)

    assert invalid(store, source, small).endswith(
        "the file has 8 bytes, more than the limit of 5 bytes"
    )
    assert store.reads == [PREFIX_BYTES], "no more than the prefix, with staging's check"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("incoming/x.csv.gz", "not gzip (the first bytes are 612c, gzip starts with 1f8b)"),
        (
            "incoming/x.csv.zst",
            "not zstd (the first bytes are 612c620a, zstd starts with 28b52ffd)",
        ),
        ("incoming/x.csv.bz2", "not bz2 (the first bytes are 612c62, bz2 starts with 425a68)"),
    ],
)
def test_compression_suffix_without_compressed_content(
    s3: Any, store: SpyStore, key: str, expected: str
) -> None:
    # GIVEN plain text under a key that says it is compressed
    source = put(s3, key, b"a,b\n1,2\n")
    assert invalid(store, source).endswith(expected)


@pytest.mark.parametrize(
    ("key", "body", "expected"),
    [
        ("incoming/x.csv.gz", bz2.compress(b"a,b\n"), "not gzip"),
        ("incoming/x.csv.zst", gzip.compress(b"a,b\n"), "not zstd"),
        ("incoming/x.csv.bz2", zstd(b"a,b\n"), "not bz2"),
    ],
)
def test_the_wrong_compression_for_the_suffix(
    s3: Any, store: SpyStore, key: str, body: bytes, expected: str
) -> None:
    source = put(s3, key, body)
    assert f": {expected} (the first bytes are " in invalid(store, source)


@pytest.mark.parametrize(
    ("body", "kind", "extension"),
    [
        (gzip.compress(b"a,b\n"), "gzip", ".gz"),
        (zstd(b"a,b\n"), "zstd", ".zst"),
        (bz2.compress(b"a,b\n"), "bz2", ".bz2"),
        # an empty file compressed: the end-of-stream magic instead of a block's
        (bz2.compress(b""), "bz2", ".bz2"),
    ],
)
def test_compressed_content_under_a_plain_key(
    s3: Any, store: SpyStore, body: bytes, kind: str, extension: str
) -> None:
    # GIVEN a compressed file uploaded without its compression extension
    source = put(s3, "incoming/x.csv", body)

    # THEN the message says what it is, not that the header isn't UTF-8
    assert invalid(store, source).endswith(
        f"the content is {kind}-compressed but the key does not end with {extension}"
    )


@pytest.mark.parametrize(
    ("key", "body", "kind"),
    [
        ("incoming/x.csv.gz", b"\x1f\x8b\x08\x00" + b"\xff" * 40, "gzip"),
        ("incoming/x.csv.zst", b"\x28\xb5\x2f\xfd" + b"\xff" * 40, "zstd"),
        ("incoming/x.csv.bz2", b"BZh9" + b"\xff" * 40, "bz2"),
    ],
)
def test_corrupt_compressed_data(
    s3: Any, store: SpyStore, key: str, body: bytes, kind: str
) -> None:
    # GIVEN the magic bytes followed by garbage
    source = put(s3, key, body)
    assert f"corrupt {kind} data (" in invalid(store, source)


@pytest.mark.parametrize(
    ("key", "compress", "kind"),
    [
        ("incoming/x.csv.gz", gzip.compress, "gzip"),
        ("incoming/x.csv.zst", zstd, "zstd"),
        ("incoming/x.csv.bz2", bz2.compress, "bz2"),
    ],
)
def test_truncated_small_compressed_file(
    s3: Any, store: SpyStore, key: str, compress: Any, kind: str
) -> None:
    # GIVEN a whole file that is a compressed stream cut short (it fits in the prefix)
    data = compress(b"id,name\n" + b"1,alice\n" * 1000)
    source = put(s3, key, data[: len(data) // 2])
    assert invalid(store, source).endswith(f"the {kind} stream is truncated")


def test_no_header_line_in_the_prefix(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b"a" * (PREFIX_BYTES + 10) + b"\n")
    assert invalid(store, source).endswith(f"no header line in the first {PREFIX_BYTES} bytes")


def test_a_quote_left_open_in_the_header(s3: Any, store: SpyStore) -> None:
    # GIVEN a header with a stray quote, and more than a prefix of rows: the header never ends
    source = put(s3, "incoming/x.csv", b'id,na"me\n' + b"1,alice\n" * PREFIX_BYTES)
    assert invalid(store, source).endswith(
        f"the header line never ends in the first {PREFIX_BYTES} bytes:"
        ' a quote (") opened in it is not closed'
    )


def test_a_quote_left_open_in_the_header_of_a_small_file(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", b'id,"name\n1,alice\n')
    assert invalid(store, source).endswith(
        'the header line never ends: a quote (") opened in it is not closed'
    )


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


def test_compressed_header_not_utf8(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv.zst", zstd("id,café\n1,2\n".encode("latin-1")))
    assert invalid(store, source).endswith("(byte 0xe9 at offset 6)")


def test_header_utf16(s3: Any, store: SpyStore) -> None:
    source = put(s3, "incoming/x.csv", "id,name\n1,2\n".encode("utf-16"))
    assert invalid(store, source).endswith(
        "the content is UTF-16LE encoded (byte order mark fffe); chute reads UTF-8:"
        " convert the file to UTF-8"
    )


def test_a_cut_multibyte_character_after_the_header_is_fine(s3: Any, store: SpyStore) -> None:
    # GIVEN a valid header and a row whose 2-byte character is cut by the prefix boundary
    body = b"id,name\n" + b"x" * (PREFIX_BYTES - 9) + "é".encode() + b"\n"
    source = put(s3, "incoming/x.csv", body)
    assert validate(source, store, SETTINGS).file.delimiter == ","


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


# --- data contracts -----------------------------------------------------------------------------
CONTRACTS = """
[settings]
unmatched = "{unmatched}"

[contracts.orders]
match = {{ prefixes = ["partners/acme/"], suffixes = [".csv", ".csv.zst"] }}
dialect = {{ delimiter = ";" }}
outputs = ["parquet", "jsonl"]
extra_columns = "drop"

[[contracts.orders.columns]]
name = "order_id"
nullable = false

[[contracts.orders.columns]]
name = "amount"
type = "float"

[contracts.readings]
match = {{ prefixes = ["devices/"] }}
dialect = {{ quote = "'" }}
outputs = ["parquet"]

[[contracts.readings.columns]]
name = "device, id"

[[contracts.readings.columns]]
name = "value"
type = "int"
"""


def contracts_file(tmp_path: Path, unmatched: str = "text") -> Path:
    path = tmp_path / "contracts.toml"
    path.write_text(CONTRACTS.format(unmatched=unmatched), encoding="utf-8")
    return path


@pytest.fixture
def contracts(tmp_path: Path) -> ContractSet:
    return load_contracts(contracts_file(tmp_path))


def violation(
    store: S3Store, source: ObjectRef, contracts: ContractSet, settings: ValidateSettings = SETTINGS
) -> dict[str, Any]:
    """The JSON document of the ContractViolation raised."""
    with pytest.raises(ContractViolation) as caught:
        validate(source, store, settings, contracts)
    document: dict[str, Any] = json.loads(str(caught.value))
    return document


def test_a_matched_contract_decides_formats_delimiter_and_names_itself(
    s3: Any, store: SpyStore, contracts: ContractSet
) -> None:
    # GIVEN a file under the contract's prefix, ';'-separated as the contract says, with an extra
    # column whose name holds as many commas as the header has semicolons (a sniff would say ',')
    source = put(s3, "partners/acme/2024 (1).csv.zst", zstd(b"order_id;amount;n,o,t\n1;2.5;x\n"))

    # WHEN validated
    plan = validate(source, store, SETTINGS, contracts)

    # THEN the plan uses the contract's delimiter and outputs, and names the contract
    assert plan == Plan(
        file=FileSpec(ref=source, compression="zstd", delimiter=";"),
        target=Target(
            bucket=OUTPUT,
            key="partners/acme/2024 (1).csv",
            formats=("parquet", "jsonl"),
            contract="orders",
        ),
        resources={"vcpu": "2", "memory": "4096"},
    )
    assert plan.to_dict()["target"]["keys"] == {
        "parquet": "partners/acme/2024 (1).csv.parquet",
        "jsonl": "partners/acme/2024 (1).csv.jsonl",
    }


def test_a_contract_without_a_delimiter_gets_it_sniffed_with_its_quote(
    s3: Any, store: SpyStore, contracts: ContractSet
) -> None:
    # GIVEN a contract quoting with "'" and a header whose quoted name holds the delimiter
    source = put(s3, "devices/d1.tsv", b"'device, id'\tvalue\nAB-1\t3\n")
    plan = validate(source, store, SETTINGS, contracts)
    assert (plan.file.delimiter, plan.target.contract) == ("\t", "readings")

    # GIVEN the same in a .csv: the delimiter is sniffed outside the contract's quotes
    source = put(s3, "devices/d1.csv", b"'device, id'|value\nAB-1|3\n")
    plan = validate(source, store, SETTINGS, contracts)
    assert (plan.file.delimiter, plan.target.formats) == ("|", ("parquet",))


def test_a_header_that_breaks_the_contract_is_rejected_before_conversion(
    s3: Any, store: SpyStore, contracts: ContractSet
) -> None:
    # GIVEN a file matching the orders contract but without its required "amount" column
    source = put(s3, "partners/acme/x.csv", b"order_id;total\n1;2\n")

    # WHEN validated  THEN ContractViolation, with the contract's JSON document
    document = violation(store, source, contracts)

    assert document["contract"] == "orders"
    assert document["badRows"] == 0
    assert {"row": 1, "column": "amount", "value": "", "reason": "required column missing"} in (
        document["problems"]
    )
    assert store.reads == [PREFIX_BYTES], "only the prefix was read"


def test_extra_columns_break_a_contract_that_rejects_them(
    s3: Any, store: SpyStore, contracts: ContractSet
) -> None:
    source = put(s3, "devices/d1.csv", b"'device, id',value,firmware\n")
    document = violation(store, source, contracts)
    assert document["contract"] == "readings"
    assert [p["column"] for p in document["problems"]] == ["firmware"]


def test_structural_header_problems_stay_invalid_file_under_a_contract(
    s3: Any, store: SpyStore, contracts: ContractSet
) -> None:
    # GIVEN a contract file with a duplicate column: a broken file, not a contract matter
    source = put(s3, "partners/acme/x.csv", b"order_id;amount;amount\n")
    assert "duplicate column names: 'amount'" in invalid(store, source, contracts=contracts)


def test_an_unmatched_file_is_text_when_unmatched_is_text(
    s3: Any, store: SpyStore, contracts: ContractSet
) -> None:
    # GIVEN a key under no contract's prefix (and one under the prefix with another suffix)
    for key in ("incoming/x.csv", "partners/acme/x.tsv"):
        source = put(s3, key, b"anything\tgoes\n")
        settings = ValidateSettings(output_bucket=OUTPUT, output_formats=("parquet",))

        # WHEN validated  THEN text mode, with the configured formats
        target = validate(source, store, settings, contracts).target

        assert (target.contract, target.formats, target.infer) == (None, ("parquet",), False)


def test_an_unmatched_file_is_typed_by_inference_when_unmatched_is_infer(
    s3: Any, store: SpyStore, tmp_path: Path
) -> None:
    inferring = load_contracts(contracts_file(tmp_path, unmatched="infer"))
    source = put(s3, "incoming/x.csv", b"a,b\n1,2\n")
    settings = ValidateSettings(output_bucket=OUTPUT)
    target = validate(source, store, settings, inferring).target
    assert (target.contract, target.infer) == (None, True)
    # AND a plan without the field (made before inference existed) stays text
    assert not Target.from_dict({k: v for k, v in target.to_dict().items() if k != "infer"}).infer


def test_an_unmatched_file_is_rejected_when_unmatched_is_reject(
    s3: Any, store: SpyStore, tmp_path: Path
) -> None:
    # GIVEN contracts that reject files matching none, and a file outside them
    strict = load_contracts(contracts_file(tmp_path, unmatched="reject"))
    source = put(s3, "incoming/déjà vu.csv", b"a,b\n")

    # WHEN validated  THEN ContractViolation naming the key (no more than the prefix read)
    document = violation(store, source, strict)

    assert document["contract"] is None
    assert f"s3://{STAGING}/incoming/déjà vu.csv" in document["detail"]
    assert "matches no data contract" in document["detail"]
    assert document["problems"] == []
    assert store.reads == [PREFIX_BYTES], "no more than the prefix, with staging's check"


def test_a_matched_file_is_accepted_when_unmatched_is_reject(
    s3: Any, store: SpyStore, tmp_path: Path
) -> None:
    strict = load_contracts(contracts_file(tmp_path, unmatched="reject"))
    source = put(s3, "partners/acme/x.csv", b"amount;order_id\n")
    assert validate(source, store, SETTINGS, strict).target.contract == "orders"


# --- settings -----------------------------------------------------------------------------------
def test_settings_default_to_text_mode_json_lines_and_parquet() -> None:
    settings = ValidateSettings.from_mapping({"CHUTE_OUTPUT_BUCKET": OUTPUT})
    assert (settings.contracts_file, settings.output_formats) == (None, ("jsonl", "parquet"))


def test_settings_take_an_existing_contracts_file(tmp_path: Path) -> None:
    path = contracts_file(tmp_path)
    env = {"CHUTE_OUTPUT_BUCKET": OUTPUT, "CHUTE_CONTRACTS_FILE": f" {path} "}
    assert ValidateSettings.from_mapping(env).contracts_file == path


@pytest.mark.parametrize(
    ("name", "what"), [("nope.toml", "does not exist"), (".", "is not a file")]
)
def test_settings_reject_a_contracts_file_that_is_not_there(
    tmp_path: Path, name: str, what: str
) -> None:
    env = {"CHUTE_OUTPUT_BUCKET": OUTPUT, "CHUTE_CONTRACTS_FILE": str(tmp_path / name)}
    with pytest.raises(SettingsError) as caught:
        ValidateSettings.from_mapping(env)
    assert "CHUTE_CONTRACTS_FILE" in str(caught.value)
    assert what in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ("jsonl", "parquet")),
        ("parquet", ("parquet",)),
        (" JSONL , parquet ", ("jsonl", "parquet")),
        ("parquet,jsonl,", ("parquet", "jsonl")),
    ],
)
def test_settings_parse_output_formats(raw: str, expected: tuple[str, ...]) -> None:
    env = {"CHUTE_OUTPUT_BUCKET": OUTPUT, "CHUTE_OUTPUT_FORMATS": raw}
    assert ValidateSettings.from_mapping(env).output_formats == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("jsonl,csv", "unknown output format 'csv' (use jsonl, parquet, comma-separated)"),
        ("jsonl;parquet", "unknown output format 'jsonl;parquet'"),
        ("parquet,PARQUET", "lists 'parquet' twice"),
        (" , ", "names no output format"),
    ],
)
def test_settings_reject_bad_output_formats(raw: str, message: str) -> None:
    env = {"CHUTE_OUTPUT_BUCKET": OUTPUT, "CHUTE_OUTPUT_FORMATS": raw}
    with pytest.raises(SettingsError) as caught:
        ValidateSettings.from_mapping(env)
    assert "CHUTE_OUTPUT_FORMATS" in str(caught.value)
    assert message in str(caught.value)


# --- handler ------------------------------------------------------------------------------------
@pytest.fixture
def env(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("CHUTE_OUTPUT_BUCKET", OUTPUT)
    for name in (
        "CHUTE_SUFFIXES",
        "CHUTE_MAX_FILE_BYTES",
        "CHUTE_CONTRACTS_FILE",
        "CHUTE_OUTPUT_FORMATS",
    ):
        monkeypatch.delenv(name, raising=False)
    with fresh():
        yield monkeypatch


def test_handler_returns_the_plan_dict(s3: Any, env: pytest.MonkeyPatch) -> None:
    # GIVEN the state machine's input to Validate
    source = put(s3, "incoming/a b+c%.csv", b"id;name\n1;a\n")
    event = {"source": source.to_dict(), "execution": "a-b-c-csv-0123"}

    # WHEN the handler runs
    result = validate_handler.handler(event, None)

    # THEN it returns the Plan as a dict, in the documented shape
    assert result == {
        "file": {**source.to_dict(), "compression": "none", "delimiter": ";"},
        "target": {
            "bucket": OUTPUT,
            "key": "incoming/a b+c%.csv",
            "formats": ["jsonl", "parquet"],
            "contract": None,
            "infer": True,
            "keys": {
                "jsonl": "incoming/a b+c%.csv.jsonl",
                "parquet": "incoming/a b+c%.csv.parquet",
            },
        },
        "resources": {"vcpu": "2", "memory": "4096"},  # the Batch job's size for this file
    }
    assert Plan.from_dict(result).file.ref == source
    assert json.loads(json.dumps(result)) == result, "JSON all the way"


def test_handler_loads_the_contracts_once(s3: Any, env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # GIVEN a contracts file and output formats in the environment
    path = contracts_file(tmp_path)
    env.setenv("CHUTE_CONTRACTS_FILE", str(path))
    env.setenv("CHUTE_OUTPUT_FORMATS", "parquet")
    matched = put(s3, "partners/acme/x.csv", b"order_id;amount\n")
    unmatched = put(s3, "incoming/x.csv", b"a,b\n")

    # WHEN the handler runs twice, the file changing in between
    first = validate_handler.handler({"source": matched.to_dict(), "execution": "x"}, None)
    path.write_text("not toml", encoding="utf-8")
    second = validate_handler.handler({"source": unmatched.to_dict(), "execution": "y"}, None)

    # THEN both used the contracts read at the first invocation
    assert (first["target"]["contract"], first["target"]["formats"]) == (
        "orders",
        ["parquet", "jsonl"],
    )
    assert (second["target"]["contract"], second["target"]["formats"]) == (None, ["parquet"])


def test_handler_fails_on_a_missing_contracts_file(
    s3: Any, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a deployment naming a contracts file that isn't there
    env.setenv("CHUTE_CONTRACTS_FILE", str(tmp_path / "missing.toml"))
    source = put(s3, "incoming/x.csv", b"a,b\n")

    # WHEN the handler runs  THEN a SettingsError (no ErrorEquals catches it: the file stays put)
    with pytest.raises(SettingsError):
        validate_handler.handler({"source": source.to_dict(), "execution": "x"}, None)


def test_handler_fails_on_a_broken_contracts_file(
    s3: Any, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "contracts.toml"
    path.write_text('[settings]\nunmatched = "maybe"\n', encoding="utf-8")
    env.setenv("CHUTE_CONTRACTS_FILE", str(path))
    source = put(s3, "incoming/x.csv", b"a,b\n")

    with pytest.raises(ContractConfigError) as caught:
        validate_handler.handler({"source": source.to_dict(), "execution": "x"}, None)
    assert str(path) in str(caught.value)


def test_handler_raises_the_contract_error_class(s3: Any, env: pytest.MonkeyPatch) -> None:
    # GIVEN an empty file  WHEN the handler runs  THEN InvalidFile (the ErrorEquals name) escapes
    source = put(s3, "incoming/x.csv", b"")
    with pytest.raises(InvalidFile):
        validate_handler.handler({"source": source.to_dict(), "execution": "x"}, None)


# --- wide encodings and NUL bytes (they used to crash the convert worker) ----------------------
@pytest.mark.parametrize(
    ("encoding", "name"),
    [
        ("utf-16-le", "UTF-16LE"),
        ("utf-16-be", "UTF-16BE"),
        ("utf-32-le", "UTF-32LE"),
        ("utf-32-be", "UTF-32BE"),
    ],
)
def test_wide_encodings_without_a_byte_order_mark_are_named(
    s3: Any, store: SpyStore, encoding: str, name: str
) -> None:
    # GIVEN text in a wide encoding without a byte order mark (its NULs are valid UTF-8)
    source = put(s3, "incoming/x.csv", "id,name\n1,Zoë\n".encode(encoding))
    # THEN the encoding is named, not passed on as column names holding NUL bytes
    assert invalid(store, source).endswith(
        f"the content looks {name} encoded (no byte order mark: NUL bytes between the"
        " characters); chute reads UTF-8: convert the file to UTF-8"
    )


@pytest.mark.parametrize(
    ("encoding", "name", "bom"), [("utf-32", "UTF-32LE", "fffe0000"), ("utf-16-be", "UTF-16BE", "")]
)
def test_wide_encodings_with_a_byte_order_mark_are_named(
    s3: Any, store: SpyStore, encoding: str, name: str, bom: str
) -> None:
    body = ("\ufeff" if not bom else "") + "id,name\n1,2\n"
    source = put(s3, "incoming/x.csv", body.encode(encoding))
    assert f"the content is {name} encoded (byte order mark {bom or 'feff'})" in invalid(
        store, source
    )


@pytest.mark.parametrize(
    ("header", "column"), [(b"a\x00b,c", 1), (b"id,x\x00", 2), (b"id,name,\x00\x00", 3)]
)
def test_a_nul_byte_in_a_column_name_is_invalid(
    s3: Any, store: SpyStore, header: bytes, column: int
) -> None:
    source = put(s3, "incoming/x.csv", header + b"\n1,2\n")
    assert f"the header (row 1) has a NUL byte (0x00) in the name of column {column}" in invalid(
        store, source
    )


# --- decompression limits ----------------------------------------------------------------------
def test_a_zstd_frame_declaring_too_much_content_is_rejected_before_reading_it(
    s3: Any, store: SpyStore
) -> None:
    from tasks.errors import DecompressionLimitExceeded
    from tasks.settings import DecompressionLimits

    # GIVEN a zstd file whose frame header declares 1 MiB of content (zeros compress ~4000:1)
    body = zstd(b"a,b\n" + b"0,0\n" * (256 * 1024))
    source = put(s3, "incoming/x.csv.zst", body)
    limits = DecompressionLimits(max_bytes=512 * 1024)
    settings = ValidateSettings(output_bucket=OUTPUT, decompression=limits)
    # WHEN validated with a 512 KiB limit THEN rejected, naming the limit
    with pytest.raises(DecompressionLimitExceeded) as caught:
        validate(source, store, settings)
    assert "larger than the limit of 524288 bytes" in str(caught.value)
    assert "declared in the frame header" in str(caught.value)
    # and within the default limits it is fine
    validate(source, store, SETTINGS)


def test_decompression_limits_come_from_the_settings() -> None:
    from tasks import names
    from tasks.settings import ConvertSettings, DecompressionLimits

    env = {
        names.ENV_OUTPUT_BUCKET: OUTPUT,
        names.ENV_MAX_DECOMPRESSED_BYTES: "1000",
        names.ENV_MAX_DECOMPRESSION_RATIO: "7",
    }
    expected = DecompressionLimits(max_bytes=1000, max_ratio=7)
    assert ValidateSettings.from_mapping(env).decompression == expected
    assert ConvertSettings.from_mapping(env).decompression == expected
    assert ValidateSettings.from_mapping({names.ENV_OUTPUT_BUCKET: OUTPUT}).decompression == (
        DecompressionLimits(
            max_bytes=names.DEFAULT_MAX_DECOMPRESSED_BYTES,
            max_ratio=names.DEFAULT_MAX_DECOMPRESSION_RATIO,
        )
    )
    with pytest.raises(SettingsError, match="CHUTE_MAX_DECOMPRESSION_RATIO must be positive"):
        ConvertSettings.from_mapping({names.ENV_MAX_DECOMPRESSION_RATIO: "0"})
