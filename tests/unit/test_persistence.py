"""The embedded runtime's state store (chute/local/persistence.py): objects and executions written
through to disk survive a restart; an interrupted write leaves no torn record."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.s3.models import s3_backends

from chute.local import persistence
from chute.local.moto_patches.redrive import INTERRUPTED_ERROR, RestoredExecution
from chute.local.persistence import StateStore, pending

BUCKETS = ("chute-staging", "chute-output")


def _backend() -> Any:
    return s3_backends["123456789012"]["aws"]


def _buckets(s3: Any) -> None:
    for bucket in BUCKETS:
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket="chute-staging", VersioningConfiguration={"Status": "Enabled"})


@contextmanager
def _process(root: Path) -> Iterator[tuple[Any, StateStore]]:
    """A run of the runtime: moto's backends fresh, chute's buckets created, the store under
    ``root`` prepared (what the last run left restored from it by the caller)."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        _buckets(s3)
        store = StateStore(root, BUCKETS)
        store.prepare()
        yield s3, store


def test_objects_written_through_are_restored_with_version_metadata_and_bytes(
    tmp_path: Path,
) -> None:
    # GIVEN objects written (and one deleted) while the store is attached
    with _process(tmp_path) as (s3, store):
        s3.put_object(Bucket="chute-staging", Key="a/x.csv", Body=b"v1")
        put = s3.put_object(
            Bucket="chute-staging",
            Key="a/x.csv",
            Body=b"v2",
            Metadata={"who": "me"},
            ContentType="text/csv",
        )
        s3.put_object(Bucket="chute-output", Key="gone.jsonl", Body=b"{}")
        for bucket, key in (("chute-staging", "a/x.csv"), ("chute-output", "gone.jsonl")):
            store.object_written(_backend(), bucket, key)
        s3.delete_object(Bucket="chute-output", Key="gone.jsonl")
        store.object_written(_backend(), "chute-output", "gone.jsonl")
    # WHEN a new process restores them into empty buckets
    with _process(tmp_path) as (s3, again):
        counts = again.restore_objects(_backend())
        # THEN the current version is back, bytes, version id, metadata and type included
        got = s3.get_object(Bucket="chute-staging", Key="a/x.csv")
        assert got["Body"].read() == b"v2"
        assert got["VersionId"] == put["VersionId"]
        assert got["Metadata"] == {"who": "me"}
        assert got["ContentType"] == "text/csv"
        assert got["ETag"] == put["ETag"]
        assert counts == {"chute-staging": 1, "chute-output": 0}
        assert "Contents" not in s3.list_objects_v2(Bucket="chute-output")


def test_a_delete_landing_during_the_restore_wins_and_the_restore_goes_on(
    tmp_path: Path,
) -> None:
    # GIVEN two stored objects, and a new process whose server already answers (a Lambda
    # worker of the crashed run, still finishing, deletes one of them after the store was
    # prepared and before its restore)
    with _process(tmp_path) as (s3, store):
        for key in ("done.jsonl", "kept.jsonl"):
            s3.put_object(Bucket="chute-output", Key=key, Body=b"{}")
            store.object_written(_backend(), "chute-output", key)
    with _process(tmp_path) as (s3, again):
        again.object_written(_backend(), "chute-output", "done.jsonl")  # the late delete
        # WHEN the objects are restored
        counts = again.restore_objects(_backend())
        # THEN the deleted one stays deleted, the other is back (no crash on the body gone)
        listed = s3.list_objects_v2(Bucket="chute-output").get("Contents", [])
        assert [o["Key"] for o in listed] == ["kept.jsonl"]
        assert counts == {"chute-staging": 0, "chute-output": 1}


def test_prepare_removes_what_an_interrupted_write_left(tmp_path: Path) -> None:
    # GIVEN a temporary file and a body no record names (a SIGKILL between the two renames)
    store = StateStore(tmp_path, BUCKETS)
    store.prepare()
    folder = tmp_path / "s3" / "chute-output"
    (folder / ".abc.json.123.tmp").write_bytes(b"{torn")
    (folder / "abc.000.body").write_bytes(b"orphan")
    # WHEN the next start prepares the store
    StateStore(tmp_path, BUCKETS).prepare()
    # THEN neither is left, and nothing is restored from them
    assert list(folder.iterdir()) == []


def test_a_write_cut_before_its_record_keeps_the_old_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an object written through, then a new version whose record is never written (a
    # SIGKILL after its body reached the disk, before the record's rename)
    with _process(tmp_path) as (s3, store):
        s3.put_object(Bucket="chute-output", Key="k.jsonl", Body=b"old")
        store.object_written(_backend(), "chute-output", "k.jsonl")
        s3.put_object(Bucket="chute-output", Key="k.jsonl", Body=b"new")

        def killed(path: Path, chunks: Any) -> int:
            raise KeyboardInterrupt  # the process goes here, the body already written

        monkeypatch.setattr(persistence, "_write_atomic", killed)
        with pytest.raises(KeyboardInterrupt):
            store.object_written(_backend(), "chute-output", "k.jsonl")
        monkeypatch.undo()
        folder = tmp_path / "s3" / "chute-output"
        assert len(list(folder.glob("*.body"))) == 2  # the new body is on disk, unnamed
    # WHEN the next start restores
    with _process(tmp_path) as (s3, again):
        again.restore_objects(_backend())
        # THEN the old object is back whole, and the unnamed body is swept
        assert s3.get_object(Bucket="chute-output", Key="k.jsonl")["Body"].read() == b"old"
        assert len(list(folder.glob("*.body"))) == 1


def test_fresh_starts_empty(tmp_path: Path) -> None:
    store = StateStore(tmp_path, BUCKETS)
    store.prepare()
    (tmp_path / "executions" / "x.json").write_text("{}")
    StateStore(tmp_path, BUCKETS).prepare(fresh=True)
    assert list((tmp_path / "executions").iterdir()) == []


def _record(name: str, status: str, key: str, version: str) -> dict[str, Any]:
    return {
        "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:m:{name}",
        "name": name,
        "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
        "input": json.dumps({"source": {"key": key, "versionId": version, "eTag": "e"}}),
        "status": status,
        "startDate": dt.datetime(2026, 12, 3, tzinfo=dt.UTC),
        "stopDate": None,
        "output": None,
        "error": None,
        "cause": None,
    }


def test_running_executions_are_restored_as_interrupted(tmp_path: Path) -> None:
    # GIVEN one finished and one running execution recorded before a stop
    store = StateStore(tmp_path, BUCKETS)
    store.prepare()
    store._save_execution(_record("done", "SUCCEEDED", "a.csv", "v1"), [{"id": 1}])
    store._save_execution(_record("busy", "RUNNING", "b.csv", "v1"), [])
    machine = SimpleNamespace(
        arn="arn:aws:states:us-east-1:123456789012:stateMachine:m", executions=[]
    )
    # WHEN they are restored
    count, interrupted = StateStore(tmp_path, BUCKETS).restore_executions(
        machine, dt.datetime.now(dt.UTC)
    )
    # THEN both are listed; the running one ended ABORTED with chute.Interrupted
    assert count == 2 and interrupted == ["busy"]
    by_name = {e.name: e for e in machine.executions}
    assert by_name["done"].status == "SUCCEEDED"
    assert by_name["done"].to_history_output() == {"events": [{"id": 1}]}
    assert (by_name["busy"].status, by_name["busy"].error) == ("ABORTED", INTERRUPTED_ERROR)


def test_pending_announces_lost_and_interrupted_files_and_lists_failed_ones() -> None:
    def obj(name: str) -> Any:
        return SimpleNamespace(name=name, version_id="v1", etag='"e"')

    def execution(name: str, status: str, key: str) -> RestoredExecution:
        return RestoredExecution(_record(name, status, key, "v1"), [])

    runs = [
        execution("x-interrupted", "ABORTED", "interrupted.csv"),
        execution("y-failed", "FAILED", "failed.csv"),
        execution("z-done", "SUCCEEDED", "done.csv"),
    ]
    staged = [obj("lost.csv"), obj("interrupted.csv"), obj("failed.csv"), obj("done.csv")]
    announce, failed = pending(staged, runs, ["x-interrupted"])
    assert [o.name for o in announce] == ["lost.csv", "interrupted.csv"]
    assert failed == [("failed.csv", "y-failed")]
