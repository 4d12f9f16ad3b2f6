"""Racing versions of one key through the real state machine, made deterministic by holding one
execution at a step (EmbeddedAws.hold) while the other finishes: both orders, both routes, and a
delete right after the upload. The newest version's output and archived original end up current;
an older version's execution that loses ends Stale and publishes nothing."""

from __future__ import annotations

import gzip
import hashlib

from chute.ops.executions import ExecutionView
from tests.support.pipeline import LARGE_THRESHOLD, Pipeline, wait_until


def _csv(tag: str, rows: int = 3) -> bytes:
    return ("id,version\n" + "".join(f"{i},{tag}\n" for i in range(rows))).encode()


def _large(tag: str) -> bytes:
    rows = "".join(f"{i},{tag},{hashlib.sha256(str(i).encode()).hexdigest()}\n" for i in range(200))
    body = gzip.compress(("id,version,digest\n" + rows).encode(), mtime=0)
    assert len(body) >= LARGE_THRESHOLD
    return body


def _by_version(pipeline: Pipeline, key: str, count: int) -> list[ExecutionView]:
    """The finished executions of ``key`` once there are ``count`` of them, oldest upload first."""

    def finished() -> list[ExecutionView] | None:
        done = [e for e in pipeline.executions_for(key) if e.status != "RUNNING"]
        return done if len(done) == count else None

    views: list[ExecutionView] = wait_until(finished, timeout=90, what=f"{count} executions")
    return sorted(views, key=lambda v: str(v.started))


def _versions(pipeline: Pipeline, key: str) -> list[str]:
    resp = pipeline.s3.list_object_versions(Bucket=pipeline.r.staging_bucket, Prefix=key)
    return [v["VersionId"] for v in resp.get("Versions", []) if v["Key"] == key]


def _jsonl_key(key: str) -> str:
    return f"{key.removesuffix('.gz')}.jsonl"


def _output_rows(pipeline: Pipeline, key: str) -> set[str]:
    return {r["version"] for r in pipeline.jsonl(pipeline.r.output_bucket, _jsonl_key(key))}


def _archived(pipeline: Pipeline, key: str) -> bytes:
    return pipeline.read(pipeline.r.archive_bucket, key)


def test_an_old_version_converting_in_lambda_loses_to_a_newer_upload(pipeline: Pipeline) -> None:
    # GIVEN an old version held at ConvertInLambda
    key = "race/lambda-old-last.csv"
    hold = pipeline.aws.hold("convert", key)
    pipeline.put(key, _csv("old"))
    hold.wait_reached()
    # WHEN a newer version is uploaded and finishes first, then the old one goes on
    pipeline.put(key, _csv("new"))
    wait_until(lambda: _output_rows_or_none(pipeline, key) == {"new"}, what="new output")
    hold.release()
    old, new = _by_version(pipeline, key, 2)
    # THEN the newer version SUCCEEDED and its output and original are current
    assert new.status == "SUCCEEDED", new.cause
    assert (old.outcome, old.error) == ("STALE", "Superseded"), old.cause
    assert "superseded by version" in (old.cause or "")
    assert _output_rows(pipeline, key) == {"new"}
    assert _archived(pipeline, key) == _csv("new")
    # AND the old version's bytes are kept: staging keeps it as a noncurrent version
    (kept,) = _versions(pipeline, key)
    body = pipeline.s3.get_object(Bucket=pipeline.r.staging_bucket, Key=key, VersionId=kept)
    assert body["Body"].read() == _csv("old")


def test_an_old_version_finishing_first_is_replaced_by_the_newer(pipeline: Pipeline) -> None:
    # GIVEN the newer version held at ConvertInLambda while the old one finishes
    key = "race/lambda-old-first.csv"
    pipeline.put(key, _csv("old"))
    wait_until(lambda: _output_rows_or_none(pipeline, key) == {"old"}, what="old output")
    wait_until(lambda: [e for e in pipeline.executions_for(key) if e.status == "SUCCEEDED"])
    hold = pipeline.aws.hold("convert", key)
    pipeline.put(key, _csv("new"))
    hold.wait_reached()
    hold.release()
    old, new = _by_version(pipeline, key, 2)
    # THEN both SUCCEEDED and the newer version's results are current; the old original is the
    # archive's previous version
    assert (old.status, new.status) == ("SUCCEEDED", "SUCCEEDED"), (old.cause, new.cause)
    assert _output_rows(pipeline, key) == {"new"}
    assert _archived(pipeline, key) == _csv("new")
    history = pipeline.s3.list_object_versions(Bucket=pipeline.r.archive_bucket, Prefix=key)
    assert len([v for v in history.get("Versions", []) if v["Key"] == key]) == 2


def test_an_old_version_in_batch_loses_to_a_small_newer_version(pipeline: Pipeline) -> None:
    # GIVEN a large old version held before its Batch job runs (the 120 MB + 9 bytes)
    key = "race/batch-old-last.csv.gz"
    hold = pipeline.aws.hold("batch", key)
    pipeline.put(key, _large("old"))
    hold.wait_reached()
    # WHEN a tiny new version takes the Lambda route and finishes, then the job runs
    small = gzip.compress(_csv("new"), mtime=0)
    pipeline.put(key, small)
    wait_until(lambda: _output_rows_or_none(pipeline, key) == {"new"}, what="new output")
    hold.release()
    old, new = _by_version(pipeline, key, 2)
    # THEN the old execution is Stale (the job exited 66) with the job's own error and message
    # (NameBatchFailure raises it again), the newer results stay
    assert (old.route, new.route) == ("batch", "lambda")
    assert new.status == "SUCCEEDED", new.cause
    assert (old.outcome, old.error) == ("STALE", "Superseded"), old.cause
    assert "superseded by version" in (old.cause or "")
    assert _output_rows(pipeline, key) == {"new"}
    assert _archived(pipeline, key) == small


def test_a_newer_version_in_batch_replaces_an_older_small_one(pipeline: Pipeline) -> None:
    # GIVEN a small old version held at Archive, a large newer version through Batch
    key = "race/batch-new.csv.gz"
    hold = pipeline.aws.hold("archive", key)
    pipeline.put(key, gzip.compress(_csv("old"), mtime=0))
    hold.wait_reached()
    pipeline.put(key, _large("new"))
    wait_until(lambda: _output_rows_or_none(pipeline, key) == {"new"}, what="new output")
    wait_until(lambda: [e for e in pipeline.executions_for(key) if e.status == "SUCCEEDED"])
    # WHEN the old one's Archive goes on
    hold.release()
    old, new = _by_version(pipeline, key, 2)
    # THEN it is Stale: the archive already holds the newer original, which stays
    assert new.route == "batch" and new.status == "SUCCEEDED", new.cause
    assert (old.outcome, old.error) == ("STALE", "Superseded"), old.cause
    assert _output_rows(pipeline, key) == {"new"}
    assert _archived(pipeline, key) == _large("new")


def test_a_file_deleted_right_after_upload_is_stale_and_nothing_moves(pipeline: Pipeline) -> None:
    # GIVEN a file held at Validate, deleted by its uploader
    key = "race/deleted.csv"
    hold = pipeline.aws.hold("validate", key)
    pipeline.put(key, _csv("gone"))
    hold.wait_reached()
    pipeline.s3.delete_object(Bucket=pipeline.r.staging_bucket, Key=key)
    hold.release()
    (ex,) = _by_version(pipeline, key, 1)
    # THEN Stale (SourceMissing), and nothing converted, archived or quarantined
    assert (ex.outcome, ex.error) == ("STALE", "SourceMissing"), ex.cause
    assert f"{key}.jsonl" not in pipeline.keys(pipeline.r.output_bucket)
    assert key not in pipeline.keys(pipeline.r.archive_bucket)
    assert key not in pipeline.keys(pipeline.r.quarantine_bucket)


def _output_rows_or_none(pipeline: Pipeline, key: str) -> set[str] | None:
    if _jsonl_key(key) not in pipeline.keys(pipeline.r.output_bucket):
        return None
    return _output_rows(pipeline, key)
