"""S3's limits on objects and multipart uploads, and the one rule for choosing part sizes, used
by everything chute uploads or copies: the conversion's outputs (tasks.adapters.s3), the archive
and quarantine copies, `chute upload` and the console's browser uploads.

Pure: constants and arithmetic only.
"""

from __future__ import annotations

from typing import Final

MIB: Final = 1024 * 1024
MIN_PART_BYTES: Final = 5 * MIB
"""Every part but the last must be at least this large."""
MAX_PART_BYTES: Final = 5 * 1024 * MIB
MAX_PARTS: Final = 10_000
MAX_OBJECT_BYTES: Final = 5 * 1024 * 1024 * MIB
PARTS_PER_STEP: Final = 1_000
"""A stream of unknown length doubles its part size after this many parts (streaming_part)."""


def part_size(size: int, preferred: int) -> int:
    """The part size for an object of ``size`` bytes known in advance: ``preferred`` (at least
    S3's minimum), raised to the smallest whole MiB that fits the object in MAX_PARTS parts."""
    part = max(preferred, MIN_PART_BYTES)
    if size > part * MAX_PARTS:
        part = -(-size // (MAX_PARTS * MIB)) * MIB
    return min(part, MAX_PART_BYTES)


def streaming_part(number: int, preferred: int) -> int:
    """The size of part ``number`` (from 1) of a stream whose length isn't known: ``preferred``
    for the first PARTS_PER_STEP parts, then twice that for the next thousand, and so on, so
    10,000 parts hold S3's largest object even from 8 MiB parts (~8 TB) while small outputs keep
    small parts (memory: one part per writer). ``preferred`` is the caller's (its settings
    check S3's minimum)."""
    part = preferred << ((number - 1) // PARTS_PER_STEP)
    return min(part, MAX_PART_BYTES)
