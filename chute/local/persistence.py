"""The embedded runtime's data across restarts (local only): objects of the pipeline's buckets
and the record of every execution, kept under ``<state_dir>/state/``.

Write-through: an S3 request that changes an object is on disk before its response is sent
(hooks in chute.local.moto_patches), an execution is recorded when it starts and when it ends.
Every record is written to a temporary name, fsynced, then renamed over its final name (and the
folder fsynced), so a SIGKILL at any moment leaves either the old or the new record, never a
torn one; an object's body goes to a new name of its own, fsynced before the record that names
it is renamed in (the folder's fsync after that rename covers both names). Bodies are streamed
in chunks, never held whole in memory. moto's stand-in for a restored execution is
chute.local.moto_patches.redrive.RestoredExecution (a redrive revives it).

Layout::

    state/FORMAT                          "1"
    state/s3/<bucket>/<sha>.json          one current object: key, versionId, eTag, metadata...
    state/s3/<bucket>/<sha>.<nonce>.body  its bytes (a new file per write: the record names it)
    state/executions/<name>.json          DescribeExecution + GetExecutionHistory of one execution

What is kept per key is the *current* object only (for the versioned staging bucket: the current
version, with its versionId; older versions and delete markers are not kept). Restored executions
are read-only records in moto's Step Functions backend: they list, describe and show their
history like any other; one that was RUNNING when the process stopped is restored as ABORTED with
the error ``chute.Interrupted`` and its file is announced again (a new execution).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "1"
INTERRUPTED_CAUSE = (
    "the embedded runtime stopped while this execution was running; its file was announced"
    " again when it restarted"
)
_TERMINAL_FAILURES = ("FAILED", "TIMED_OUT", "ABORTED")


# --- durable files ----------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, chunks: Iterable[bytes]) -> int:
    """Write ``chunks`` to ``path``, a name nothing refers to yet, and fsync it. Not atomic:
    whatever names the file is written after this returns (a crash before leaves a file no
    record names, swept at start)."""
    size = 0
    file = path.open("xb")  # a name already taken fails here, before anything is removed
    try:
        with file:
            for chunk in chunks:
                file.write(chunk)
                size += len(chunk)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return size


def _write_atomic(path: Path, chunks: Iterable[bytes]) -> int:
    """Write ``chunks`` to ``path`` so that a crash leaves the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    size = 0
    try:
        with tmp.open("wb") as file:
            for chunk in chunks:
                file.write(chunk)
                size += len(chunk)
            file.flush()
            os.fsync(file.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return size


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    raise TypeError(f"not JSON: {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if set(obj) == {"$datetime"}:
        return dt.datetime.fromisoformat(obj["$datetime"])
    return obj


def _dumps(document: Any) -> bytes:
    return json.dumps(document, default=_encode, ensure_ascii=False).encode("utf-8")


def _loads(data: bytes) -> Any:
    return json.loads(data, object_hook=_decode)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def describe_of(execution: Any) -> dict[str, Any]:
    """What DescribeExecution answers for a (live) execution of moto's interpreter."""
    status = str(getattr(execution.status, "value", execution.status))
    output = execution.output
    if output is not None and not isinstance(output, str):
        output = json.dumps(output)
    return {
        "executionArn": execution.execution_arn,
        "name": execution.name,
        "stateMachineArn": execution.state_machine_arn,
        "input": execution.execution_input,
        "status": status,
        "startDate": execution.start_date,
        "stopDate": execution.stop_date,
        "output": output if status == "SUCCEEDED" else None,
        "error": execution.error,
        "cause": execution.cause,
        "redriveCount": int(getattr(execution, "chute_redrive_count", 0)),
        "redriveDate": getattr(execution, "chute_redrive_date", None),
    }


# --- the store --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Current:
    version_id: str
    etag: str
    modified: str
    body: str


@dataclass
class Recovery:
    """What a start found in the state folder."""

    objects: dict[str, int] = field(default_factory=dict)  # bucket -> objects restored
    executions: int = 0
    interrupted: list[str] = field(default_factory=list)  # executions RUNNING at the stop
    announced: list[str] = field(default_factory=list)  # keys announced again
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, execution): rerun them
    seconds: float = 0.0

    @property
    def empty(self) -> bool:
        return not any(self.objects.values()) and not self.executions


class StateStore:
    """Write-through copy of the pipeline's buckets and executions under ``root``."""

    def __init__(self, root: Path, buckets: Iterable[str]) -> None:
        self.root = root
        self.buckets = frozenset(buckets)
        self._index: dict[tuple[str, str], _Current] = {}
        self._found: dict[str, list[dict[str, Any]]] = {}
        self.restored: dict[str, set[str]] = {}
        self._locks = [threading.Lock() for _ in range(64)]

    # layout
    def _bucket_dir(self, bucket: str) -> Path:
        return self.root / "s3" / bucket

    @property
    def _executions_dir(self) -> Path:
        return self.root / "executions"

    def prepare(self, *, fresh: bool = False) -> None:
        """Create the folders (after deleting everything when ``fresh``) and remove what an
        interrupted write left behind (temporary files, bodies no record names)."""
        if fresh and self.root.exists():
            shutil.rmtree(self.root)
        for bucket in self.buckets:
            self._bucket_dir(bucket).mkdir(parents=True, exist_ok=True)
        self._executions_dir.mkdir(parents=True, exist_ok=True)
        marker = self.root / "FORMAT"
        if not marker.exists():
            _write_atomic(marker, [FORMAT.encode()])
        elif marker.read_text().strip() != FORMAT:
            raise RuntimeError(f"{self.root} holds state of another format; use --fresh")
        for folder in [*(self._bucket_dir(b) for b in self.buckets), self._executions_dir]:
            for stale in folder.glob(".*.tmp"):
                stale.unlink()
        for bucket in self.buckets:
            folder = self._bucket_dir(bucket)
            records = [_loads(path.read_bytes()) for path in sorted(folder.glob("*.json"))]
            named = {record["body"] for record in records}
            for body in folder.glob("*.body"):
                if body.name not in named:
                    body.unlink()
            self._found[bucket] = records

    # --- S3 -----------------------------------------------------------------------------------
    def _lock(self, bucket: str, key: str) -> threading.Lock:
        return self._locks[hash((bucket, key)) % len(self._locks)]

    def object_written(self, backend: Any, bucket: str, key: str) -> None:
        """Make the stored copy of ``bucket/key`` match the backend's current object."""
        if bucket not in self.buckets:
            return
        with self._lock(bucket, key):
            self._sync(backend, bucket, key)

    def bucket_written(self, backend: Any, bucket: str) -> None:
        if bucket not in self.buckets:
            return
        live = set(backend.get_bucket(bucket).keys.keys())
        stored = {k for (b, k) in list(self._index) if b == bucket}
        for key in sorted(live | stored):
            self.object_written(backend, bucket, key)

    def _sync(self, backend: Any, bucket: str, key: str) -> None:
        from moto.s3.models import FakeKey

        from chute.local.moto_patches.s3_bodies import key_chunks

        current = backend.get_bucket(bucket).keys.get(key)
        if not isinstance(current, FakeKey):  # deleted, or a delete marker
            self._forget(bucket, key)
            return
        state = _Current(
            version_id=current.version_id,
            etag=current.etag,
            modified=current.last_modified.isoformat(),
            body="",
        )
        known = self._index.get((bucket, key))
        if known is not None and (known.version_id, known.etag, known.modified) == (
            state.version_id,
            state.etag,
            state.modified,
        ):
            return
        folder = self._bucket_dir(bucket)
        sha = _sha(key)
        body = f"{sha}.{uuid.uuid4().hex[:12]}.body"
        _write_new(folder / body, key_chunks(current))
        record = {
            "key": key,
            "versionId": current.version_id,
            "eTag": current.etag,
            "lastModified": current.last_modified,
            "size": current.size,
            "metadata": dict(current.metadata),
            "storageClass": current.storage_class,
            "checksum": {
                "algorithm": current.checksum_algorithm,
                "value": current.checksum_value,
                "type": current.checksum_type,
                "parts": current.checksum_parts,
            },
            "body": body,
        }
        _write_atomic(folder / f"{sha}.json", [_dumps(record)])
        self._index[(bucket, key)] = _Current(state.version_id, state.etag, state.modified, body)
        if known is not None and known.body != body:
            with contextlib.suppress(FileNotFoundError):
                (folder / known.body).unlink()

    def _forget(self, bucket: str, key: str) -> None:
        known = self._index.pop((bucket, key), None)
        folder = self._bucket_dir(bucket)
        record = folder / f"{_sha(key)}.json"
        if record.exists():
            body = known.body if known else _loads(record.read_bytes())["body"]
            record.unlink()
            _fsync_dir(folder)
            with contextlib.suppress(FileNotFoundError):
                (folder / body).unlink()

    def restore_objects(self, backend: Any) -> dict[str, int]:
        """Put every object stored when the store was prepared back into the (freshly created)
        buckets, except where a client already wrote or deleted the key since (the newer write
        wins). The server already answers while this runs: a Lambda worker of the previous run,
        still finishing its invocation after a crash, may write a key now, and its write-through
        replaces the stored body -- each key is restored under its lock, and a body gone since
        the store was prepared is a newer write's doing, not an error."""
        counts: dict[str, int] = {}
        for bucket in sorted(self.buckets):
            folder = self._bucket_dir(bucket)
            counts[bucket] = 0
            for record in self._found.pop(bucket, []):
                with self._lock(bucket, record["key"]):
                    if self._restore_object(backend, bucket, folder, record):
                        counts[bucket] += 1
        return counts

    def _restore_object(
        self, backend: Any, bucket: str, folder: Path, record: dict[str, Any]
    ) -> bool:
        """One stored object back into its bucket; False when a newer write or delete came
        first."""
        from chute.local.moto_patches.s3_bodies import SMALL_BODY_BYTES, FileBody

        if record["key"] in backend.get_bucket(bucket).keys:
            return False
        body_path = folder / record["body"]
        try:
            size = body_path.stat().st_size
        except FileNotFoundError:  # removed by the write-through of a newer write or delete
            return False
        value: bytes | FileBody
        if size <= SMALL_BODY_BYTES:
            value = body_path.read_bytes()
        else:  # the key reads its bytes from the stored file (opened read-only)
            value = FileBody(body_path.open("rb"), size)
        key = backend.put_object(
            bucket,
            record["key"],
            value,
            storage=record.get("storageClass"),
            etag=record["eTag"].strip('"'),
            disable_notification=True,
        )
        if record["versionId"] != "null":
            key._version_id = record["versionId"]
        key.last_modified = record["lastModified"]
        key.set_metadata(dict(record["metadata"]), replace=True)
        checksum = record.get("checksum") or {}
        key.checksum_algorithm = checksum.get("algorithm")
        key.checksum_value = checksum.get("value")
        key.checksum_type = checksum.get("type")
        key.checksum_parts = checksum.get("parts")
        self._index[(bucket, record["key"])] = _Current(
            key.version_id, key.etag, key.last_modified.isoformat(), record["body"]
        )
        self.restored.setdefault(bucket, set()).add(record["key"])
        return True

    # --- executions ---------------------------------------------------------------------------
    def _execution_path(self, name: str) -> Path:
        return self._executions_dir / f"{_sha(name)}.json"

    def execution_started(self, execution: Any) -> None:
        self._save_execution(describe_of(execution), [])

    def execution_ended(self, execution: Any) -> dict[str, Any]:
        """Record the ended execution; returns what DescribeExecution answers for it."""
        describe = describe_of(execution)
        history = execution.to_history_output().get("events", [])
        self._save_execution(describe, list(history))
        return describe

    def history_of(self, name: str) -> Callable[[], list[Any]]:
        """Reads the recorded history of execution ``name`` when called."""
        path = self._execution_path(name)

        def history() -> list[Any]:
            return list(_loads(path.read_bytes())["history"])

        return history

    def _save_execution(self, describe: dict[str, Any], history: list[Any]) -> None:
        _write_atomic(
            self._execution_path(describe["name"]),
            [_dumps({"describe": describe, "history": history})],
        )

    def restore_executions(self, state_machine: Any, now: dt.datetime) -> tuple[int, list[str]]:
        """Append every recorded execution of ``state_machine`` to it (oldest first); returns
        how many, and the names of those that were RUNNING (restored as interrupted)."""
        from chute.local.moto_patches.redrive import INTERRUPTED_ERROR, RestoredExecution

        records = []
        for path in self._executions_dir.glob("*.json"):
            record = _loads(path.read_bytes())
            if record["describe"]["stateMachineArn"] == state_machine.arn:
                records.append(record)
        records.sort(key=lambda r: r["describe"]["startDate"])
        interrupted = []
        known = {e.name for e in state_machine.executions}
        for record in records:
            describe = record["describe"]
            if describe["name"] in known:
                continue
            if describe["status"] == "RUNNING":
                describe.update(
                    status="ABORTED",
                    stopDate=now,
                    error=INTERRUPTED_ERROR,
                    cause=INTERRUPTED_CAUSE,
                )
                self._save_execution(describe, record["history"])
                interrupted.append(describe["name"])
            state_machine.executions.append(
                RestoredExecution(describe, self.history_of(describe["name"]))
            )
        return len(records), interrupted


def source_version(execution: Any) -> tuple[str, str, str] | None:
    """(key, versionId, eTag) of the file an execution's input names."""
    try:
        source = json.loads(execution.execution_input or "{}").get("source") or {}
    except (ValueError, AttributeError):
        return None
    if not isinstance(source, dict) or not isinstance(source.get("key"), str):
        return None
    return source["key"], str(source.get("versionId") or ""), str(source.get("eTag") or "")


def pending(
    staging_objects: Iterable[Any], executions: Iterable[Any], interrupted: Iterable[str]
) -> tuple[list[Any], list[tuple[str, str]]]:
    """Which staging objects to announce again, and which failed files to list for a rerun.

    An object is announced again when no execution ever ran for its version (its event was lost
    with the queue) or every one that did was interrupted by the stop. When an execution for
    it failed for a reason of its own, it is left for the operator: ``chute rerun``.
    """
    stopped = set(interrupted)
    by_version: dict[tuple[str, str], list[Any]] = {}
    for execution in executions:
        source = source_version(execution)
        if source is None:
            continue
        key, version, etag = source
        by_version.setdefault((key, version or etag.strip('"')), []).append(execution)
    announce, failed = [], []
    for obj in staging_objects:
        version = obj.version_id if obj.version_id != "null" else obj.etag.strip('"')
        runs = by_version.get((obj.name, version), [])
        if any(str(e.status) in ("RUNNING", "SUCCEEDED") for e in runs):
            continue
        own = [e for e in runs if e.name not in stopped]
        failures = [e for e in own if str(e.status) in _TERMINAL_FAILURES]
        if failures:
            newest = max(failures, key=lambda e: e.start_date)
            failed.append((obj.name, newest.name))
        else:
            announce.append(obj)
    return announce, failed


# --- wiring into the embedded runtime ---------------------------------------------------------
class Persistence:
    """The embedded runtime's side: ``open`` before the server starts, ``restore`` once the
    resources exist, ``announce`` once the queue is polled, ``close`` at the stop."""

    def __init__(self, root: Path, resources: Any) -> None:
        self.resources = resources
        r = resources
        self.store = StateStore(
            root, (r.staging_bucket, r.output_bucket, r.archive_bucket, r.quarantine_bucket)
        )
        self.recovery = Recovery()
        self._announce: list[Any] = []

    def open(self, *, fresh: bool) -> None:
        from chute.local.moto_patches import HOOKS

        self.store.prepare(fresh=fresh)
        HOOKS.object_written = self.store.object_written
        HOOKS.bucket_written = self.store.bucket_written
        HOOKS.execution_started = self._started
        HOOKS.execution_ended = self._ended

    def _started(self, execution: Any) -> None:
        if execution.state_machine_arn == self.resources.state_machine_arn:
            self.store.execution_started(execution)

    def _ended(self, execution: Any) -> None:
        if execution.state_machine_arn == self.resources.state_machine_arn:
            describe = self.store.execution_ended(execution)
            self._retire(execution, describe)

    def _retire(self, execution: Any, describe: dict[str, Any]) -> None:
        """Keep only the record of an ended execution, as a restart would: moto kept the
        interpreter's whole state of every execution (~125 KiB each, 600 MiB for a 5,000-file
        backlog). One that ran a mock config's test case stays whole (its redrive needs it)."""
        from chute.local.moto_patches.redrive import RestoredExecution

        if getattr(execution.exec_worker, "_mock_test_case", None) is not None:
            return
        _, sfn = self._backends()
        executions = sfn.describe_state_machine(execution.state_machine_arn).executions
        for i in range(len(executions) - 1, -1, -1):  # the newest end first, mostly
            if executions[i] is execution:
                executions[i] = RestoredExecution(describe, self.store.history_of(execution.name))
                return

    def _backends(self) -> tuple[Any, Any]:
        from moto.s3.models import s3_backends
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        r = self.resources
        return s3_backends[r.account]["aws"], stepfunctions_parser_backends[r.account][r.region]

    def restore(self) -> Recovery:
        started = dt.datetime.now(dt.UTC)
        s3, sfn = self._backends()
        recovery = self.recovery
        recovery.objects = self.store.restore_objects(s3)
        machine = sfn.describe_state_machine(self.resources.state_machine_arn)
        recovery.executions, recovery.interrupted = self.store.restore_executions(machine, started)
        staging = s3.get_bucket(self.resources.staging_bucket)
        from moto.s3.models import FakeKey

        restored = self.store.restored.get(self.resources.staging_bucket, set())
        current = [
            k
            for k in (staging.keys.get(n) for n in list(staging.keys))
            if isinstance(k, FakeKey) and k.name in restored
        ]
        self._announce, recovery.failed = pending(current, machine.executions, recovery.interrupted)
        recovery.seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
        return recovery

    def announce(self, suffixes: Iterable[str]) -> list[str]:
        """Announce the pending staging objects again, as S3 does for a new object (through
        the bucket's notification: queue, event source, trigger)."""
        from moto.s3 import notifications

        from tasks.formats import keys as formats

        s3, _ = self._backends()
        bucket = s3.get_bucket(self.resources.staging_bucket)
        suffixes = tuple(suffixes)
        for key in self._announce:
            if formats.is_folder_marker(key.name) or not formats.matches_suffix(key.name, suffixes):
                continue
            notifications.send_event(
                self.resources.account,
                notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT,
                bucket,
                key,
            )
            self.recovery.announced.append(key.name)
        self._announce = []
        return self.recovery.announced

    def close(self) -> None:
        from chute.local.moto_patches import HOOKS

        HOOKS.object_written = None
        HOOKS.bucket_written = None
        HOOKS.execution_started = None
        HOOKS.execution_ended = None
