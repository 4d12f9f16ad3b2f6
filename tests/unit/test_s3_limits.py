"""The one part-size rule (tasks/s3_limits.py) for everything chute uploads or copies."""

from __future__ import annotations

from tasks.s3_limits import (
    MAX_OBJECT_BYTES,
    MAX_PART_BYTES,
    MAX_PARTS,
    MIB,
    MIN_PART_BYTES,
    part_size,
    streaming_part,
)


def test_a_known_size_keeps_the_preferred_part_until_it_would_need_too_many_parts() -> None:
    assert part_size(10, 1) == MIN_PART_BYTES
    assert part_size(MAX_PARTS * 8 * MIB, 8 * MIB) == 8 * MIB  # exactly 10,000 parts of 8 MiB
    assert part_size(MAX_PARTS * 8 * MIB + 1, 8 * MIB) == 9 * MIB
    grown = part_size(100 * 1024**3, 8 * MIB)
    assert grown % MIB == 0 and grown * MAX_PARTS >= 100 * 1024**3 > (grown - MIB) * MAX_PARTS
    assert part_size(MAX_OBJECT_BYTES, 8 * MIB) * MAX_PARTS >= MAX_OBJECT_BYTES
    assert part_size(MAX_OBJECT_BYTES, 8 * MIB) <= MAX_PART_BYTES


def test_a_stream_of_unknown_length_fits_the_largest_object_in_10000_parts() -> None:
    sizes = [streaming_part(n, 8 * MIB) for n in range(1, MAX_PARTS + 1)]
    # small outputs keep the preferred part; parts only grow, never past S3's maximum
    assert sizes[:1000] == [8 * MIB] * 1000 and sizes[1000] == 16 * MIB
    assert sizes == sorted(sizes) and max(sizes) <= MAX_PART_BYTES
    assert sum(sizes) >= MAX_OBJECT_BYTES
    # the 8 MiB parts of the past capped an output at 80 GiB
    assert sum(sizes[:MAX_PARTS]) > 10 * 8 * MIB * MAX_PARTS
