"""The workflow's error contract.

Lambda reports ``errorType`` = the exception's class name, and the state machine's ``ErrorEquals``
matches that exact string (no inheritance). So every concrete class here appears by name in
``workflows/pipeline.asl.json`` and every custom name there is a class here (tests check both).

- ``PermanentError`` subclasses: the file itself is wrong. Never retried; the file is moved to
  quarantine with a report.
- ``TransientError`` subclasses: the world is wrong for now (throttling, 5xx, timeouts). Retried
  with backoff; when retries are exhausted the execution fails and the file stays in staging,
  ready for a rerun.
- ``StaleEventError`` subclasses: the event no longer describes what is in staging (the object
  was replaced or already processed). The execution fails without touching any file.
- ``Replaced``: another staged key that maps to the same outputs was uploaded later and its
  outputs win. This file publishes nothing, is archived, and the execution ends ``Replaced``.
"""

from __future__ import annotations


class ChuteError(Exception):
    """Base of every error chute raises on purpose."""


class PermanentError(ChuteError):
    """The file can't be processed as it is: quarantine it, never retry."""


class TransientError(ChuteError):
    """A temporary condition: retry."""


class StaleEventError(ChuteError):
    """The event refers to an object that is no longer the one in staging."""


# --- permanent ------------------------------------------------------------------------------
class UnsupportedFormat(PermanentError):
    """The key's extension or compression is not one chute accepts."""


class InvalidFile(PermanentError):
    """Structural problem found by validation: empty, too large, no header, not UTF-8."""


class MalformedContent(PermanentError):
    """The content can't be converted: broken compression, undecodable bytes, bad rows."""


class ContractViolation(PermanentError):
    """The file breaks its data contract (header, types, values); details in the message."""


class DecompressionLimitExceeded(PermanentError):
    """A compressed file holds more content than allowed (CHUTE_MAX_DECOMPRESSED_BYTES), or
    expands more than allowed (CHUTE_MAX_DECOMPRESSION_RATIO): a decompression bomb, or a file
    too large to convert. Stopped while streaming, before the content is all written."""


# --- transient ------------------------------------------------------------------------------
class StorageUnavailable(TransientError):
    """S3 throttled, answered 5xx, or the connection failed."""


# --- stale ----------------------------------------------------------------------------------
class SourceMissing(StaleEventError):
    """The object is no longer in staging (already processed, or deleted)."""


class SourceChanged(StaleEventError):
    """The object in staging is not the version the event announced (it was overwritten)."""


class Superseded(StaleEventError):
    """A newer version of the file was uploaded after this one: the newer version's results are
    the ones kept, and this version publishes nothing more (its bytes stay where they are)."""


# --- another file's outputs win ------------------------------------------------------------
class Replaced(ChuteError):
    """Another staged key that maps to the same outputs (``x.csv`` and ``x.csv.gz``) was
    uploaded after this file: the later upload's outputs are the ones kept. This file publishes
    nothing (what it had written is removed), is archived, and its execution ends Replaced with
    a message naming the other key (docs/guarantees.md#two-files-one-output)."""


# --- not part of the workflow's contract --------------------------------------------------------
class WriteConflict(Exception):
    """A conditional write lost a race (412/409): another writer changed the object between the
    check and the write. Callers look again and decide; it never leaves a step."""


def concrete_errors() -> list[type[ChuteError]]:
    """Every error class the workflow must know by name (the leaves of the hierarchy)."""
    leaves: list[type[ChuteError]] = []
    for family in (PermanentError, TransientError, StaleEventError):
        leaves.extend(family.__subclasses__())
    leaves.append(Replaced)
    return leaves
