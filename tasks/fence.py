"""Newest wins: how chute publishes objects for a staged file without ever letting an older
upload replace what a newer one wrote.

Every object chute publishes for a staged file (its outputs, its archived or quarantined
original, the quarantine report) carries a :class:`Stamp` in its S3 user metadata: the source
key, that version's id, the S3 event ``sequencer`` and the upload's event time. Two stamps are
ordered (:meth:`Stamp.newer_than`):

- versions of **one key** by ``sequencer``: S3 orders the events of one key by it (versionIds are
  opaque, event times too coarse);
- **two keys** that map to the same outputs (``x.csv`` and ``x.csv.gz``) by upload time, then by
  key: S3's sequencers mean nothing across keys. The later upload wins; the other file ends
  Replaced (docs/guarantees.md, "Two files, one output").

A write is a compare-and-swap with S3 conditional writes (:func:`decide`): look at the object
in place, refuse (Superseded) when a newer version wrote it, else write with ``If-Match`` on
the ETag seen (``If-None-Match: *`` when there was none). When another writer wins the race
between the look and the write, S3 answers 412 and :func:`publish` looks again. Each object
ends holding the newest version's bytes, whatever order the executions finish in.

Pure: the store calls are passed in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, unquote

from tasks.errors import Replaced, SourceMissing, StorageUnavailable, Superseded, WriteConflict
from tasks.models import ObjectRef

if TYPE_CHECKING:
    from tasks.models import Head

SEQUENCER_META = "chute-sequencer"
VERSION_META = "chute-version"
KEY_META = "chute-key"  # percent-encoded: S3 user metadata is ASCII
UPLOADED_META = "chute-uploaded"
ATTEMPTS = 8
"""Looks at an object before a publication gives up (each retry means another writer won)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Stamp:
    """Which staged file, and which version of it, an object belongs to."""

    version: str
    sequencer: str | None = None
    key: str | None = None
    """The staged key (None: written before stamps named their key)."""
    uploaded: str | None = None
    """When S3 announced the upload (ISO 8601, UTC; :func:`tasks.models.upload_time`)."""

    @classmethod
    def of(cls, ref: ObjectRef) -> Stamp:
        return cls(
            version=ref.version_id or (ref.etag or "").strip('"'),
            sequencer=ref.sequencer,
            key=ref.key,
            uploaded=ref.uploaded,
        )

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> Stamp | None:
        version = metadata.get(VERSION_META)
        if not version:
            return None  # not written by chute (or by a version before stamps)
        key = metadata.get(KEY_META)
        return cls(
            version=version,
            sequencer=metadata.get(SEQUENCER_META) or None,
            key=unquote(key) if key else None,
            uploaded=metadata.get(UPLOADED_META) or None,
        )

    def metadata(self) -> dict[str, str]:
        out = {VERSION_META: self.version}
        if self.sequencer:
            out[SEQUENCER_META] = self.sequencer
        if self.key is not None:
            out[KEY_META] = quote(self.key, safe="/")
        if self.uploaded:
            out[UPLOADED_META] = self.uploaded
        return out

    def same_file(self, other: Stamp) -> bool:
        """Both are versions of one staged key (a stamp without a key counts as the same file:
        objects written before stamps named their key compare as they always did)."""
        return self.key is None or other.key is None or self.key == other.key

    def same_version(self, other: Stamp) -> bool:
        return self.same_file(other) and self.version == other.version

    def newer_than(self, other: Stamp) -> bool:
        """True when this upload wins over ``other``'s: a later version of the same key (by
        sequencer; unknown order: False), or another key uploaded later (then: the greater key)."""
        if not self.same_file(other):
            return (self.uploaded or "", self.key or "") > (other.uploaded or "", other.key or "")
        if not self.sequencer or not other.sequencer:
            return False
        width = max(len(self.sequencer), len(other.sequencer))
        return self.sequencer.upper().rjust(width, "0") > other.sequencer.upper().rjust(width, "0")

    def describe(self) -> str:
        when = f", uploaded {self.uploaded}" if self.uploaded else ""
        return f"{self.key!r} (version {self.version}{when})"


@dataclass(frozen=True)
class Condition:
    """How to write: ``if_match`` an ETag, or ``if_none_match`` (no object may exist).
    ``same`` when the object in place already belongs to this version (an earlier attempt)."""

    if_match: str | None = None
    if_none_match: bool = False
    same: bool = False
    replaces: Stamp | None = None
    """The stamp of another staged file whose object this write replaces (an earlier upload of
    a key that maps to the same output)."""


def decide(existing: Head | None, stamp: Stamp, where: str) -> Condition:
    """The condition for writing ``stamp``'s object over ``existing`` (None: nothing there).
    Raises Superseded when a newer version of the same key wrote the object in place, Replaced
    when a later upload of another key did."""
    if existing is None:
        return Condition(if_none_match=True)
    other = Stamp.from_metadata(existing.metadata)
    if other is None:
        return Condition(if_match=existing.etag)
    if other.newer_than(stamp):
        raise lost_to(other, stamp, where)
    return Condition(
        if_match=existing.etag,
        same=other.same_version(stamp),
        replaces=None if other.same_file(stamp) else other,
    )


def lost_to(winner: Stamp, stamp: Stamp, where: str) -> Superseded | Replaced:
    """The error of ``stamp``'s file when ``winner``'s object is in its way at ``where``."""
    if winner.same_file(stamp):
        return Superseded(f"{where}: superseded by version {winner.version}")
    return Replaced(
        f"{where} belongs to {winner.describe()}, uploaded after this file {stamp.describe()}:"
        " both map to the same outputs and the later upload wins, so this file publishes"
        " nothing and is archived (docs/guarantees.md#two-files-one-output)"
    )


def publish(
    look: Callable[[], Head | None],
    write: Callable[[Condition], T],
    stamp: Stamp,
    where: str,
    *,
    expect_absent: bool = False,
) -> T:
    """Write with :func:`decide`'s condition, looking again whenever another writer won the race.
    ``write`` raises WriteConflict on a 412/409. With ``expect_absent`` the first write goes
    without a look, on the condition :func:`decide` gives when nothing is there (If-None-Match):
    a new object costs no look, and one that is there makes it fail and look as before."""
    if expect_absent:
        with contextlib.suppress(WriteConflict):  # something is there: look and decide below
            return write(Condition(if_none_match=True))
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


@dataclass
class Slot:
    """One object a file may publish (a :func:`publish_all` set): ``write`` makes this file's
    object visible under a condition; None when the file has none here, so an older file's
    object in place is removed (``delete``, conditional on the ETag seen)."""

    where: str
    look: Callable[[], Head | None]
    delete: Callable[[Condition], None]
    write: Callable[[Condition], object] | None = None
    written: bool = field(default=False, init=False)


def publish_all(slots: Sequence[Slot], stamp: Stamp) -> list[Stamp]:
    """Publish one file's objects so that, however many files race for the same slots, the
    slots end up holding exactly one file's objects: the newest's (:meth:`Stamp.newer_than`).

    Every racer goes through the slots in the same order writing its objects (a new object
    without a look first: :func:`publish`'s ``expect_absent``), then looks at every slot,
    removing older files' objects from the slots it has nothing for. A file that meets a newer
    one's object anywhere removes what it wrote (only while it is still its own) and raises
    Superseded or Replaced; an older racer can't replace an object written after its look (the
    write's condition fails), and the newest file's look at the other slots removes whatever an
    older racer left there. Returns the stamps of other files whose objects were replaced or
    removed.
    """
    replaced: dict[tuple[str | None, str], Stamp] = {}

    def note(condition: Condition) -> None:
        if condition.replaces is not None:
            other = condition.replaces
            replaced[(other.key, other.version)] = other

    try:
        for slot in slots:
            if slot.write is not None:
                write = slot.write

                def written(
                    condition: Condition,
                    slot: Slot = slot,
                    write: Callable[[Condition], object] = write,
                ) -> object:
                    result = write(condition)
                    slot.written = True
                    note(condition)
                    return result

                publish(slot.look, written, stamp, slot.where, expect_absent=True)
        for slot in slots:  # the second look (the first at the slots it has nothing for)
            existing = slot.look()
            if existing is None:
                continue
            condition = decide(existing, stamp, slot.where)
            if slot.write is None and not condition.same:
                _retract(slot, stamp, note)
    except BaseException:
        _undo(slots, stamp)
        raise
    return list(replaced.values())


def _retract(slot: Slot, stamp: Stamp, note: Callable[[Condition], None]) -> None:
    """Remove an older file's object from ``slot`` (objects chute didn't stamp stay)."""

    def delete(condition: Condition) -> None:
        if condition.if_match and not condition.same:
            slot.delete(condition)
            note(condition)

    def look() -> Head | None:
        existing = slot.look()
        if existing is not None and Stamp.from_metadata(existing.metadata) is None:
            return None  # not chute's: never removed
        return existing

    publish(look, delete, stamp, slot.where)


def _undo(slots: Sequence[Slot], stamp: Stamp) -> None:
    """Best effort: remove this file's objects that are still its own (the error that made the
    publication stop is what the caller sees)."""
    for slot in slots:
        if not slot.written:
            continue
        try:
            existing = slot.look()
            owner = Stamp.from_metadata(existing.metadata) if existing is not None else None
            if existing is not None and owner is not None and owner.same_version(stamp):
                slot.delete(Condition(if_match=existing.etag, same=True))
        except Exception:  # best effort: the error that stopped the publication is re-raised
            continue
