"""tasks.formats: which keys chute accepts, how it reads them, where their output goes."""

from __future__ import annotations

import pytest

from tasks import formats
from tasks.errors import UnsupportedFormat
from tasks.names import DEFAULT_SUFFIXES


@pytest.mark.parametrize(
    "key",
    [
        "in/orders.csv",
        "in/DATA.CSV",
        "in/x.Csv.Gz",
        "in/a b+c%d/déjà vu.tsv",
        "in/x.TSV.GZ",
    ],
)
def test_matches_suffix_accepts_configured_suffixes_in_any_case(key: str) -> None:
    # GIVEN the default suffixes  WHEN a key ends with one, in any case  THEN it matches
    assert formats.matches_suffix(key, DEFAULT_SUFFIXES)


@pytest.mark.parametrize("key", ["in/notes.txt", "in/x.csv.zip", "in/x.gz", "in/csv", "in/x.csvx"])
def test_matches_suffix_rejects_other_suffixes(key: str) -> None:
    assert not formats.matches_suffix(key, DEFAULT_SUFFIXES)


def test_matches_suffix_lowercases_the_configured_suffixes_too() -> None:
    assert formats.matches_suffix("in/data.csv", (".CSV",))


def test_is_folder_marker() -> None:
    assert formats.is_folder_marker("incoming/new folder/")
    assert not formats.is_folder_marker("incoming/new folder/a.csv")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("in/orders.csv", ("csv", "none")),
        ("in/DATA.CSV", ("csv", "none")),
        ("in/orders.tsv", ("tsv", "none")),
        ("in/orders.csv.gz", ("csv", "gzip")),
        ("in/ORDERS.TSV.GZ", ("tsv", "gzip")),
        ("in.csv/orders 2024 (1).csv", ("csv", "none")),
    ],
)
def test_detect_reads_format_and_compression_from_the_key(
    key: str, expected: tuple[str, str]
) -> None:
    assert formats.detect(key) == expected


@pytest.mark.parametrize(
    "key", ["in/notes.txt", "in/x.gz", "in/.csv", "in/.csv.gz", "in/x.csv.zip"]
)
def test_detect_rejects_unsupported_keys_naming_the_key(key: str) -> None:
    # WHEN the key has no supported extension (or nothing before it)  THEN UnsupportedFormat
    with pytest.raises(UnsupportedFormat) as caught:
        formats.detect(key)
    assert repr(key) in str(caught.value)
    assert ".csv" in str(caught.value)


def test_detect_only_looks_at_the_file_name_not_the_folders() -> None:
    with pytest.raises(UnsupportedFormat):
        formats.detect("in/data.csv/readme")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("in/orders.csv", "in/orders.csv.jsonl"),
        ("in/orders.tsv", "in/orders.tsv.jsonl"),
        ("in/orders.csv.gz", "in/orders.csv.jsonl"),
        ("in/DATA.CSV.GZ", "in/DATA.CSV.jsonl"),
        ("in/a b+c/déjà vu.csv", "in/a b+c/déjà vu.csv.jsonl"),
    ],
)
def test_output_key_drops_compression_and_keeps_the_input_kind(key: str, expected: str) -> None:
    assert formats.output_key(key) == expected


def test_output_keys_of_csv_and_tsv_twins_do_not_collide() -> None:
    assert formats.output_key("in/x.csv") != formats.output_key("in/x.tsv")
