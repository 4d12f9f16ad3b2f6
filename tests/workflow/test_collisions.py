"""Two staged keys, one output, through the real state machine (docs/guarantees.md#two-files-
one-output): ``x.csv`` and ``x.csv.gz`` both publish ``x.csv.jsonl`` / ``x.csv.parquet``. The
later upload's outputs are the ones kept; an earlier upload that hadn't finished ends Replaced,
archived, its error named on both routes; one that had finished is named by the later one.
Races are made deterministic by holding one execution at a step (EmbeddedAws.hold)."""

from __future__ import annotations

import gzip
import hashlib

import zstandard

from chute.ops import operate
from chute.ops.deployment import connect
from chute.ops.executions import ExecutionView
from chute.web.model import ConsoleData
from chute.web.server import Console
from tests.support.pipeline import LARGE_THRESHOLD, Pipeline, wait_until


def _csv(tag: str, rows: int) -> bytes:
    return ("id,tag\n" + "".join(f"{i},{tag}\n" for i in range(rows))).encode()


def _large(tag: str) -> bytes:
    """Over the Batch threshold, uncompressed (so ``x.csv`` itself takes the Batch route)."""
    rows = "".join(f"{i},{tag},{hashlib.sha256(str(i).encode()).hexdigest()}\n" for i in range(60))
    body = ("id,tag,digest\n" + rows).encode()
    assert len(body) >= LARGE_THRESHOLD
    return body


def _finished(pipeline: Pipeline, key: str) -> ExecutionView:
    def done() -> ExecutionView | None:
        found = [e for e in pipeline.executions_for(key) if e.status != "RUNNING"]
        return found[0] if found else None

    view: ExecutionView = wait_until(done, timeout=90, what=f"execution of {key}")
    return view


def _tags(pipeline: Pipeline, base: str) -> dict[str, set[str]]:
    """The ``tag`` values in each output of ``base``."""
    out = pipeline.r.output_bucket
    return {
        "jsonl": {r["tag"] for r in pipeline.jsonl(out, f"{base}.jsonl")},
        "parquet": {str(r["tag"]) for r in pipeline.parquet(out, f"{base}.parquet")},
    }


def _outputs(pipeline: Pipeline, base: str) -> list[str]:
    return [k for k in pipeline.keys(pipeline.r.output_bucket) if k.startswith(f"{base}.")]


def test_in_sequence_the_later_key_replaces_the_outputs_and_names_the_earlier(
    pipeline: Pipeline,
) -> None:
    # GIVEN x.csv converted and archived
    pipeline.put("seq/x.csv", _csv("first", 5))
    first = _finished(pipeline, "seq/x.csv")
    assert first.status == "SUCCEEDED", first.cause
    # WHEN x.csv.gz, which maps to the same outputs, is uploaded later
    pipeline.put("seq/x.csv.gz", gzip.compress(_csv("second", 7), mtime=0))
    second = _finished(pipeline, "seq/x.csv.gz")
    # THEN it succeeds, the outputs are all its own, and its outcome names the file it replaced
    assert second.status == "SUCCEEDED", second.cause
    assert _tags(pipeline, "seq/x.csv") == {"jsonl": {"second"}, "parquet": {"second"}}
    assert [r.key for r in operate.replaced_files(second)] == ["seq/x.csv"]
    # AND `chute show` of the first file says whose its outputs are now
    d = connect(endpoint_url=pipeline.aws.endpoint_url)
    owners = operate.outputs_now_owned_by(d, operate.timeline(d, first.arn).execution)
    assert sorted(k for k, _ in owners) == ["seq/x.csv.jsonl", "seq/x.csv.parquet"]
    assert {r.key for _, r in owners} == {"seq/x.csv.gz"}
    # AND the console shows the columns the conversion inferred
    detail = ConsoleData(d).detail(second.arn)
    html = Console(d, allowed_hosts=("h:1",)).render("_execution.html", detail=detail).body
    assert b'data-testid="schema"' in html and b"<td>id</td><td>int</td>" in html
    # AND both originals are archived
    archived = pipeline.keys(pipeline.r.archive_bucket)
    assert {"seq/x.csv", "seq/x.csv.gz"} <= set(archived)


def test_an_earlier_upload_finishing_last_ends_replaced_and_archived(pipeline: Pipeline) -> None:
    # GIVEN x.csv.gz held at ConvertInLambda
    early, late = "race2/x.csv.gz", "race2/x.csv"
    hold = pipeline.aws.hold("convert", early)
    pipeline.put(early, gzip.compress(_csv("early", 4), mtime=0))
    hold.wait_reached()
    # WHEN x.csv (a smaller key, uploaded later) converts and finishes first, then it goes on
    pipeline.put(late, _csv("late", 6))
    winner = _finished(pipeline, late)
    assert winner.status == "SUCCEEDED", winner.cause
    hold.release()
    loser = _finished(pipeline, early)
    # THEN the earlier upload is Replaced, naming the key whose outputs are kept
    assert (loser.outcome, loser.error) == ("REPLACED", "Replaced"), loser.cause
    assert "'race2/x.csv'" in (loser.cause or "") and "later upload wins" in (loser.cause or "")
    # AND the outputs are the later file's only; the earlier original is archived, not staged
    assert _tags(pipeline, "race2/x.csv") == {"jsonl": {"late"}, "parquet": {"late"}}
    assert _outputs(pipeline, "race2/x.csv") == ["race2/x.csv.jsonl", "race2/x.csv.parquet"]
    assert early in pipeline.keys(pipeline.r.archive_bucket)
    assert early not in pipeline.keys(pipeline.r.staging_bucket)
    # AND a rerun is refused with the way out (it would lose again)
    d = connect(endpoint_url=pipeline.aws.endpoint_url)
    (result,) = operate.rerun(d, [loser.arn])
    assert result.action == "refused" and "upload it again" in result.reason


def test_an_earlier_upload_in_batch_ends_replaced_with_the_named_error(pipeline: Pipeline) -> None:
    # GIVEN a large x.csv held before its Batch job runs
    early, late = "race3/x.csv", "race3/x.csv.zst"
    hold = pipeline.aws.hold("batch", early)
    pipeline.put(early, _large("early"))
    hold.wait_reached()
    # WHEN a small x.csv.zst uploaded later converts in Lambda first
    pipeline.put(late, zstandard.ZstdCompressor().compress(_csv("late", 3)))
    winner = _finished(pipeline, late)
    assert (winner.route, winner.status) == ("lambda", "SUCCEEDED"), winner.cause
    hold.release()
    loser = _finished(pipeline, early)
    # THEN the job's Replaced reaches the workflow by name (exit 73, NameBatchFailure), not as
    # States.TaskFailed, and the original is archived
    assert loser.route == "batch"
    assert (loser.outcome, loser.error) == ("REPLACED", "Replaced"), loser.cause
    assert "'race3/x.csv.zst'" in (loser.cause or "")
    assert _tags(pipeline, "race3/x.csv") == {"jsonl": {"late"}, "parquet": {"late"}}
    assert early in pipeline.keys(pipeline.r.archive_bucket)
    assert not [k for k in pipeline.keys(pipeline.r.output_bucket) if "batch-failures" in k]
    # AND the console tells it like every other failure: the named error and its message
    d = connect(endpoint_url=pipeline.aws.endpoint_url)
    detail = ConsoleData(d).detail(loser.arn)
    assert detail.failure is not None and detail.failure.error == "Replaced"
    assert "'race3/x.csv.zst'" in (detail.failure.message or "")
    html = Console(d, allowed_hosts=("h:1",)).render("_execution.html", detail=detail).body
    assert b"Why another file&#39;s outputs were kept" in html
    assert b'data-testid="error-name">Replaced<' in html  # not the job's States.TaskFailed


def test_a_later_upload_in_batch_wins_over_an_earlier_one_held_in_lambda(
    pipeline: Pipeline,
) -> None:
    # GIVEN a small x.csv.gz held at ConvertInLambda
    early, late = "race4/x.csv.gz", "race4/x.csv"
    hold = pipeline.aws.hold("convert", early)
    pipeline.put(early, gzip.compress(_csv("early", 4), mtime=0))
    hold.wait_reached()
    # WHEN a large x.csv uploaded later converts in Batch and finishes first
    pipeline.put(late, _large("late"))
    winner = _finished(pipeline, late)
    assert (winner.route, winner.status) == ("batch", "SUCCEEDED"), winner.cause
    hold.release()
    loser = _finished(pipeline, early)
    # THEN the earlier one is Replaced and archived, the Batch job's outputs stay
    assert (loser.outcome, loser.error) == ("REPLACED", "Replaced"), loser.cause
    assert _tags(pipeline, "race4/x.csv") == {"jsonl": {"late"}, "parquet": {"late"}}
    assert early in pipeline.keys(pipeline.r.archive_bucket)
