"""tasks.formats.keys: which keys chute accepts, how it reads them, where their output goes."""

from __future__ import annotations

import pytest

from tasks import formats
from tasks.errors import UnsupportedFormat
from tasks.formats import keys
from tasks.models import Target
from tasks.names import DEFAULT_SUFFIXES


@pytest.mark.parametrize(
    "key",
    [
        "in/orders.csv",
        "in/DATA.CSV",
        "in/x.Csv.Gz",
        "in/a b+c%d/déjà vu.tsv",
        "in/x.TSV.GZ",
        "in/notes.txt",
        "in/x.psv.bz2",
        "in/x.CSV.ZST",
        "in/x.txt.zst",
    ],
)
def test_matches_suffix_accepts_configured_suffixes_in_any_case(key: str) -> None:
    # GIVEN the default suffixes  WHEN a key ends with one, in any case  THEN it matches
    assert keys.matches_suffix(key, DEFAULT_SUFFIXES)


@pytest.mark.parametrize(
    "key", ["in/notes.md", "in/x.csv.zip", "in/x.gz", "in/csv", "in/x.csvx", "in/x.csv.xz"]
)
def test_matches_suffix_rejects_other_suffixes(key: str) -> None:
    assert not keys.matches_suffix(key, DEFAULT_SUFFIXES)


def test_matches_suffix_lowercases_the_configured_suffixes_too() -> None:
    assert keys.matches_suffix("in/data.csv", (".CSV",))


def test_default_suffixes_are_every_data_extension_with_every_compression() -> None:
    data = set(formats.DATA_EXTENSIONS)
    compressed = {"", *formats.COMPRESSION_EXTENSIONS}
    assert set(DEFAULT_SUFFIXES) == {d + c for d in data for c in compressed}


@pytest.mark.parametrize("suffix", DEFAULT_SUFFIXES)
def test_every_default_suffix_can_be_read(suffix: str) -> None:
    # GIVEN a key the trigger accepts by default  THEN validate can tell how to read it
    keys.detect(f"in/x{suffix}")


def test_is_folder_marker() -> None:
    assert keys.is_folder_marker("incoming/new folder/")
    assert not keys.is_folder_marker("incoming/new folder/a.csv")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("in/orders.csv", ("none", None)),
        ("in/DATA.CSV", ("none", None)),
        ("in/notes.txt", ("none", None)),
        ("in/orders.tsv", ("none", "\t")),
        ("in/orders.psv", ("none", "|")),
        ("in/orders.csv.gz", ("gzip", None)),
        ("in/ORDERS.TSV.GZ", ("gzip", "\t")),
        ("in/x.csv.zst", ("zstd", None)),
        ("in/x.Psv.Zst", ("zstd", "|")),
        ("in/x.tsv.bz2", ("bz2", "\t")),
        ("in/x.TXT.BZ2", ("bz2", None)),
        ("in.csv/orders 2024 (1).csv", ("none", None)),
        ("in/x.gz.csv", ("none", None)),
    ],
)
def test_detect_reads_compression_and_declared_delimiter_from_the_key(
    key: str, expected: tuple[str, str | None]
) -> None:
    # None: .csv and .txt don't say their delimiter; validate sniffs it from the header line
    assert keys.detect(key) == expected


@pytest.mark.parametrize(
    "key",
    [
        "in/notes.md",
        "in/x.gz",
        "in/x.zst",
        "in/.csv",
        "in/.csv.gz",
        "in/.tsv.bz2",
        "in/x.csv.zip",
        "in/x.csv.gz.zst",
    ],
)
def test_detect_rejects_unsupported_keys_naming_the_key(key: str) -> None:
    # WHEN the key has no supported extension (or nothing before it)  THEN UnsupportedFormat
    with pytest.raises(UnsupportedFormat) as caught:
        keys.detect(key)
    assert repr(key) in str(caught.value)
    assert ".csv" in str(caught.value)
    assert ".zst" in str(caught.value)


def test_detect_only_looks_at_the_file_name_not_the_folders() -> None:
    with pytest.raises(UnsupportedFormat):
        keys.detect("in/data.csv/readme")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("in/orders.csv", ("in/orders.csv", "none")),
        ("in/orders.CSV.GZ", ("in/orders.CSV", "gzip")),
        ("in/x.tsv.zst", ("in/x.tsv", "zstd")),
        ("in/x.psv.Bz2", ("in/x.psv", "bz2")),
        ("in/x.gz/y.csv", ("in/x.gz/y.csv", "none")),
    ],
)
def test_split_compression_keeps_the_rest_of_the_key_as_written(
    key: str, expected: tuple[str, str]
) -> None:
    assert keys.split_compression(key) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("in/orders.csv", "in/orders.csv"),
        ("in/orders.tsv", "in/orders.tsv"),
        ("in/orders.csv.gz", "in/orders.csv"),
        ("in/DATA.CSV.GZ", "in/DATA.CSV"),
        ("in/x.psv.zst", "in/x.psv"),
        ("in/x.txt.bz2", "in/x.txt"),
        ("in/a b+c/déjà vu.csv", "in/a b+c/déjà vu.csv"),
    ],
)
def test_output_base_drops_compression_and_keeps_the_input_kind(key: str, expected: str) -> None:
    assert keys.output_base(key) == expected


def test_output_objects_are_named_after_the_base() -> None:
    # GIVEN the target of in/orders.csv.gz  THEN its objects are <base>.<format>
    target = Target(bucket="out", key=keys.output_base("in/orders.csv.gz"))
    assert target.object_key("jsonl") == "in/orders.csv.jsonl"
    assert target.object_key("parquet") == "in/orders.csv.parquet"


def test_output_bases_of_csv_and_tsv_twins_do_not_collide() -> None:
    assert keys.output_base("in/x.csv") != keys.output_base("in/x.tsv")
