"""Newest version wins: how chute publishes objects for a source key without ever letting an
older version of the file replace what a newer one wrote.

Every object chute publishes for a staged file (its outputs, its archived or quarantined
original, the quarantine report) carries a :class:`Stamp` in its S3 user metadata: the S3 event
``sequencer`` of the source version and that version's id. S3 orders the events of one key by
``sequencer`` (versionIds are opaque), so the stamps of two versions say which one is newer.

A write is a compare-and-swap with S3 conditional writes (:func:`decide`): look at the object
in place, refuse (Superseded) when a newer version wrote it, else write with ``If-Match`` on
the ETag seen (``If-None-Match: *`` when there was none). When another writer wins the race
between the look and the write, S3 answers 412 and :func:`publish` looks again. Each object
ends holding the newest version's bytes, whatever order the executions finish in.

Pure: the store calls are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from tasks.errors import SourceMissing, StorageUnavailable, Superseded, WriteConflict
from tasks.models import ObjectRef

if TYPE_CHECKING:
    from tasks.models import Head

SEQUENCER_META = "chute-sequencer"
VERSION_META = "chute-version"
ATTEMPTS = 8
"""Looks at an object before a publication gives up (each retry means another writer won)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Stamp:
    """Which version of a staged file an object belongs to."""

    version: str
    sequencer: str | None = None

    @classmethod
    def of(cls, ref: ObjectRef) -> Stamp:
        return cls(version=ref.version_id or (ref.etag or "").strip('"'), sequencer=ref.sequencer)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> Stamp | None:
        version = metadata.get(VERSION_META)
        if not version:
            return None  # not written by chute (or by a version before stamps)
        return cls(version=version, sequencer=metadata.get(SEQUENCER_META) or None)

    def metadata(self) -> dict[str, str]:
        out = {VERSION_META: self.version}
        if self.sequencer:
            out[SEQUENCER_META] = self.sequencer
        return out

    def newer_than(self, other: Stamp) -> bool:
        """True when this version was announced after ``other`` (unknown order: False)."""
        if not self.sequencer or not other.sequencer:
            return False
        width = max(len(self.sequencer), len(other.sequencer))
        return self.sequencer.upper().rjust(width, "0") > other.sequencer.upper().rjust(width, "0")


@dataclass(frozen=True)
class Condition:
    """How to write: ``if_match`` an ETag, or ``if_none_match`` (no object may exist).
    ``same`` when the object in place already belongs to this version (an earlier attempt)."""

    if_match: str | None = None
    if_none_match: bool = False
    same: bool = False


def decide(existing: Head | None, stamp: Stamp, where: str) -> Condition:
    """The condition for writing ``stamp``'s object over ``existing`` (None: nothing there).
    Raises Superseded when a newer version wrote the object in place."""
    if existing is None:
        return Condition(if_none_match=True)
    other = Stamp.from_metadata(existing.metadata)
    if other is not None and other.newer_than(stamp):
        raise Superseded(f"{where}: superseded by version {other.version}")
    return Condition(if_match=existing.etag, same=other is not None and other == stamp)


def publish(
    look: Callable[[], Head | None],
    write: Callable[[Condition], T],
    stamp: Stamp,
    where: str,
) -> T:
    """Write with :func:`decide`'s condition, looking again whenever another writer won the race.
    ``write`` raises WriteConflict on a 412/409."""
    for _ in range(ATTEMPTS):
        condition = decide(look(), stamp, where)
        try:
            return write(condition)
        except WriteConflict:
            continue
    raise StorageUnavailable(f"{where}: kept changing while it was being written")


def current_version(
    source: ObjectRef, staged: Head | None, where: str, *, what: str = "the file"
) -> None:
    """Check that staging's current object (``staged``: a HEAD without VersionId) is still the
    version ``source`` names. Deleted: SourceMissing. Replaced: Superseded (staging's current
    object is always the last one written, so the other version is the newer one)."""
    if staged is None:
        raise SourceMissing(f"{where}: {what} is no longer in staging (deleted or moved)")
    if source.version_id and staged.version_id:
        if staged.version_id != source.version_id:
            raise Superseded(f"{where}: superseded by version {staged.version_id}")
        return
    announced = (source.etag or "").strip('"')
    if announced and staged.etag != announced:
        raise Superseded(f"{where}: superseded by the object with eTag {staged.etag}")
