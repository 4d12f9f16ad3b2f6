"""Two staged keys, one output (docs/guarantees.md#two-files-one-output): ``race/x.csv`` and
``race/x.csv.gz`` both publish ``race/x.csv.*``. The later upload's outputs are the only ones at
rest; the other file raises Replaced (exit 73 on the Batch route) and leaves nothing behind.

The race is driven by the test, not by timing: each publication runs in a thread whose every
look at and write to the output bucket waits at a gate, and a schedule says which of the two
goes next, one step at a time. Schedules: both serial orders, strict alternation, and seeded
random interleavings — on both routes (the Lambda's ``convert`` and the Batch job's ``main``)
and with JSON Lines only, Parquet only, both, and different formats for the two files.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow.parquet as pq
import pytest

from batch.entrypoint import main
from tasks import names
from tasks.adapters.s3 import S3Store
from tasks.convert.domain import convert
from tasks.errors import Replaced
from tasks.fence import Condition, Stamp
from tasks.formats import OutputFormat, keys
from tasks.models import FileSpec, Head, ObjectRef, Plan, Target
from tasks.settings import ConvertSettings
from tasks.workflow import ExitCode
from tests.support.unit import OUTPUT, STAGING

Route = Literal["lambda", "batch"]
CONVERT = ConvertSettings(part_size_bytes=5 * 1024 * 1024)
EARLY = "2026-12-06T10:00:00.000Z"
LATE = "2026-12-06T10:00:01.000Z"
STEP_TIMEOUT = 20.0


# --- the controllable store ------------------------------------------------------------------
class Turnstile:
    """Lets one thread at a time through its next gate, in the order the test says."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self.waiting: dict[str, str] = {}
        self._go: set[str] = set()
        self.done: set[str] = set()
        self.trace: list[str] = []

    def gate(self, who: str, what: str) -> None:
        with self._cv:
            self.waiting[who] = what
            self._cv.notify_all()
            if not self._cv.wait_for(lambda: who in self._go, timeout=STEP_TIMEOUT):
                raise TimeoutError(f"{who} never let through {what}")
            self._go.discard(who)
            del self.waiting[who]
            self.trace.append(f"{who}:{what}")

    def finish(self, who: str) -> None:
        with self._cv:
            self.done.add(who)
            self._cv.notify_all()

    def settled(self, runners: set[str]) -> set[str]:
        """Wait until every runner waits at a gate or is done; the ones waiting."""
        with self._cv:
            ok = self._cv.wait_for(
                lambda: all(r in self.waiting or r in self.done for r in runners),
                timeout=STEP_TIMEOUT,
            )
            assert ok, f"runners never settled: waiting {self.waiting}, done {self.done}"
            return {r for r in runners if r in self.waiting and r not in self._go}

    def let(self, who: str) -> None:
        with self._cv:
            self._go.add(who)
            self._cv.notify_all()
            ok = self._cv.wait_for(lambda: who not in self._go, timeout=STEP_TIMEOUT)
            assert ok, f"{who} did not take its turn"


class GatedStore(S3Store):
    """The real adapter on moto, but every call that looks at or changes the output bucket
    waits at ``turnstile`` first (and so does the start of the conversion)."""

    def __init__(self, client: Any, who: str, turnstile: Turnstile) -> None:
        super().__init__(client)
        self._who = who
        self._turnstile = turnstile

    def _gate(self, what: str) -> None:
        self._turnstile.gate(self._who, what)

    def open_stream(self, ref: ObjectRef) -> Any:
        self._gate("start")
        return super().open_stream(ref)

    def exists(self, bucket: str, key: str) -> Head | None:
        if bucket == OUTPUT:
            self._gate(f"look {key.rsplit('/', 1)[-1]}")
        return super().exists(bucket, key)

    def delete_stamped(self, bucket: str, key: str, condition: Condition) -> None:
        self._gate(f"delete {key.rsplit('/', 1)[-1]}")
        super().delete_stamped(bucket, key, condition)

    def writer(self, bucket: str, key: str, **kwargs: Any) -> Any:
        inner = super().writer(bucket, key, **kwargs)
        gate, name = self._gate, key.rsplit("/", 1)[-1]
        complete = inner.complete

        def gated_complete(condition: Condition | None = None) -> None:
            gate(f"write {name}")
            complete(condition)

        inner.complete = gated_complete  # type: ignore[method-assign]
        return inner


# --- two files mapping to one output -------------------------------------------------------------
@dataclass(frozen=True)
class File:
    who: str
    key: str
    body: bytes
    rows: list[str]
    uploaded: str
    formats: tuple[OutputFormat, ...]
    route: Route


def _csv(tag: str, n: int) -> tuple[bytes, list[str]]:
    rows = [f"{tag}{i}" for i in range(n)]
    return ("id\n" + "".join(f"{r}\n" for r in rows)).encode(), rows


def files(
    formats_a: tuple[OutputFormat, ...],
    formats_b: tuple[OutputFormat, ...],
    route_a: Route = "lambda",
    route_b: Route = "lambda",
) -> tuple[File, File]:
    """``a`` = race/x.csv uploaded first, ``b`` = race/x.csv.gz uploaded a second later."""
    body_a, rows_a = _csv("a", 5)
    plain_b, rows_b = _csv("b", 7)
    a = File("a", "race/x.csv", body_a, rows_a, EARLY, formats_a, route_a)
    b = File(
        "b", "race/x.csv.gz", gzip.compress(plain_b, mtime=0), rows_b, LATE, formats_b, route_b
    )
    return a, b


def stage(s3: Any, f: File) -> Plan:
    resp = s3.put_object(Bucket=STAGING, Key=f.key, Body=f.body)
    ref = ObjectRef(
        bucket=STAGING,
        key=f.key,
        size=len(f.body),
        etag=resp["ETag"].strip('"'),
        version_id=resp.get("VersionId"),
        uploaded=f.uploaded,
    )
    compression = "gzip" if f.key.endswith(".gz") else "none"
    return Plan(
        file=FileSpec(ref=ref, compression=compression, delimiter=","),
        target=Target(bucket=OUTPUT, key="race/x.csv", formats=f.formats),
    )


@dataclass
class Result:
    replaced: list[dict[str, str]] | None = None  # the Output's `replaced` when it succeeded
    error: BaseException | None = None
    exit_code: int | None = None


def run(f: File, plan: Plan, store: S3Store, result: Result) -> None:
    """One file's conversion on its route; what happened goes into ``result``."""
    try:
        if f.route == "lambda":
            result.replaced = list(convert(plan, store, CONVERT).replaced)
            return
        environ = {
            names.ENV_JOB_FILE: json.dumps(plan.file.to_dict()),
            names.ENV_JOB_TARGET: json.dumps(plan.target.to_dict()),
            names.ENV_JOB_EXECUTION: f"exec-{f.who}",
            names.ENV_PART_SIZE_BYTES: str(CONVERT.part_size_bytes),
        }
        result.exit_code = main([], environ, store=store)
    except BaseException as exc:  # the test reads it
        result.error = exc


def race(
    s3: Any,
    a: File,
    b: File,
    schedule: Callable[[set[str]], str],
    trace: list[str] | None = None,
) -> dict[str, Result]:
    """Both files' publications, interleaved one gated step at a time as ``schedule`` picks
    (it gets the runners waiting at a gate and returns one of them); ``trace`` receives the
    steps taken (``who:what``)."""
    plans = {f.who: stage(s3, f) for f in (a, b)}
    turnstile = Turnstile()
    if trace is not None:
        turnstile.trace = trace
    results = {f.who: Result() for f in (a, b)}
    threads = []
    for f in (a, b):

        def body(f: File = f) -> None:
            try:
                run(f, plans[f.who], GatedStore(s3, f.who, turnstile), results[f.who])
            finally:
                turnstile.finish(f.who)

        thread = threading.Thread(target=body, name=f"race-{f.who}", daemon=True)
        thread.start()
        threads.append(thread)
    for _ in range(200):
        waiting = turnstile.settled({"a", "b"})
        if not waiting:
            break
        turnstile.let(schedule(waiting))
    for thread in threads:
        thread.join(timeout=STEP_TIMEOUT)
        assert not thread.is_alive()
    return results


def serial(first: str) -> Callable[[set[str]], str]:
    return lambda waiting: first if first in waiting else next(iter(waiting))


def alternating() -> Callable[[set[str]], str]:
    turn = iter(range(10_000))
    return lambda waiting: sorted(waiting)[next(turn) % len(waiting)]


def seeded(seed: int) -> Callable[[set[str]], str]:
    rng = random.Random(seed)
    return lambda waiting: rng.choice(sorted(waiting))


def scripted(turns: str) -> Callable[[set[str]], str]:
    """Who goes next, step by step (``"aaab"``...); then whoever is waiting, ``a`` first."""
    script = iter(turns)

    def pick(waiting: set[str]) -> str:
        for who in script:
            if who in waiting:
                return who
        return sorted(waiting)[0]

    return pick


SCHEDULES: dict[str, Callable[[], Callable[[set[str]], str]]] = {
    "a-first": lambda: serial("a"),
    "b-first": lambda: serial("b"),
    "alternating": alternating,
    **{f"seed-{n}": (lambda n=n: seeded(n)) for n in range(6)},
}


# --- what must hold at rest --------------------------------------------------------------------
def at_rest(s3: Any) -> dict[str, Stamp | None]:
    listed = s3.list_objects_v2(Bucket=OUTPUT, Prefix="race/").get("Contents", [])
    return {
        o["Key"]: Stamp.from_metadata(
            {
                k.lower(): v
                for k, v in s3.head_object(Bucket=OUTPUT, Key=o["Key"])["Metadata"].items()
            }
        )
        for o in listed
    }


def read_rows(s3: Any, key: str) -> list[str]:
    body = s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read()
    if key.endswith(".parquet"):
        return [str(v) for v in pq.read_table(io.BytesIO(body)).column("id").to_pylist()]
    return [json.loads(line)["id"] for line in body.splitlines()]


def assert_only_the_later_upload(s3: Any, a: File, b: File, results: dict[str, Result]) -> None:
    # THEN the outputs at rest are exactly b's formats, each stamped with b and holding b's rows
    objects = at_rest(s3)
    assert sorted(objects) == sorted(f"race/x.csv.{f}" for f in b.formats), objects
    for key, stamp in objects.items():
        assert stamp is not None and stamp.key == b.key, (key, stamp)
        assert read_rows(s3, key) == b.rows, key
    # AND the later upload succeeded; the earlier one either lost (Replaced, nothing left of it)
    # or had finished before and is named in b's outcome
    rb, ra = results["b"], results["a"]
    assert rb.error is None and rb.exit_code in (None, ExitCode.OK), rb
    a_finished = ra.error is None and ra.exit_code in (None, ExitCode.OK)
    if a.route == "batch" and not a_finished:
        assert ra.exit_code == ExitCode.CANTCREAT, ra
        left = json.loads(
            s3.get_object(Bucket=OUTPUT, Key=keys.batch_failure_key("exec-a"))["Body"].read()
        )
        assert left["error"] == "Replaced" and "race/x.csv.gz" in left["cause"], left
    elif not a_finished:
        assert isinstance(ra.error, Replaced), ra
        assert "'race/x.csv.gz'" in str(ra.error) and "later upload wins" in str(ra.error)
    if b.route == "lambda" and a_finished:
        assert [r["key"] for r in rb.replaced or []] == ["race/x.csv"], rb.replaced


FORMATS: dict[str, tuple[tuple[OutputFormat, ...], tuple[OutputFormat, ...]]] = {
    "jsonl": (("jsonl",), ("jsonl",)),
    "parquet": (("parquet",), ("parquet",)),
    "both": (("jsonl", "parquet"), ("jsonl", "parquet")),
    "a-both-b-jsonl": (("jsonl", "parquet"), ("jsonl",)),
    "a-jsonl-b-parquet": (("jsonl",), ("parquet",)),
}


@pytest.mark.parametrize("schedule", list(SCHEDULES))
@pytest.mark.parametrize("formats", list(FORMATS))
def test_two_keys_racing_on_the_lambda_route(s3: Any, formats: str, schedule: str) -> None:
    # GIVEN x.csv uploaded first and x.csv.gz a second later, both converting in Lambdas
    a, b = files(*FORMATS[formats])
    # WHEN their publications interleave as the schedule says
    results = race(s3, a, b, SCHEDULES[schedule]())
    assert_only_the_later_upload(s3, a, b, results)


@pytest.mark.parametrize("schedule", ["a-first", "b-first", "alternating", "seed-0", "seed-3"])
@pytest.mark.parametrize(
    ("route_a", "route_b"), [("batch", "batch"), ("batch", "lambda"), ("lambda", "batch")]
)
@pytest.mark.parametrize("formats", ["jsonl", "parquet", "both"])
def test_two_keys_racing_on_the_batch_route(
    s3: Any, formats: str, route_a: Route, route_b: Route, schedule: str
) -> None:
    # GIVEN the same two files, one or both converting in the Batch job's entrypoint
    a, b = files(*FORMATS[formats], route_a=route_a, route_b=route_b)
    results = race(s3, a, b, SCHEDULES[schedule]())
    assert_only_the_later_upload(s3, a, b, results)


def test_a_losers_undo_between_the_winners_look_and_write_makes_the_winner_look_again(
    s3: Any,
) -> None:
    # GIVEN both files write both formats; the earlier one's Parquet is in place when the later
    # one looks at that slot, and the earlier one undoes it (having met the later one's JSON
    # Lines) before the later one's conditional write: S3 answers that write NoSuchKey
    a, b = files(("jsonl", "parquet"), ("jsonl", "parquet"))
    # a: start, write jsonl (nothing there: no look) | b: start, write jsonl (412), look, write
    # | a: write parquet | b: write parquet (412), look parquet | a: the rest (meets b's jsonl,
    # undoes its parquet) | b: the rest
    trace: list[str] = []
    results = race(s3, a, b, scripted("aabbbbabb" + "a" * 12), trace)
    # THEN the later upload looked again and published (not Stale: the source never went)
    assert_only_the_later_upload(s3, a, b, results)
    assert isinstance(results["a"].error, Replaced)
    # (the race went as scripted: b's write on what it saw of a's Parquet came after a undid it)
    undone = trace.index("a:delete x.csv.parquet")
    assert trace[undone + 1 :].count("b:write x.csv.parquet") == 2, trace


def test_the_earlier_upload_finishing_first_is_named_by_the_later(s3: Any) -> None:
    # GIVEN x.csv converted and published entirely before x.csv.gz publishes
    a, b = files(("jsonl", "parquet"), ("jsonl", "parquet"))
    results = race(s3, a, b, serial("a"))
    # THEN a succeeded, b replaced its outputs and says so, and only b's outputs remain
    assert results["a"].error is None and results["a"].replaced == []
    (named,) = results["b"].replaced or []
    assert (named["key"], named["uploaded"]) == ("race/x.csv", EARLY)
    assert_only_the_later_upload(s3, a, b, results)


def test_the_earlier_upload_arriving_last_publishes_nothing(s3: Any) -> None:
    # GIVEN x.csv.gz published before x.csv (uploaded earlier) comes to publish
    a, b = files(("jsonl",), ("jsonl",))
    results = race(s3, a, b, serial("b"))
    # THEN x.csv is Replaced, naming the key that owns the outputs, and wrote nothing
    assert isinstance(results["a"].error, Replaced)
    assert "race/x.csv.jsonl belongs to 'race/x.csv.gz'" in str(results["a"].error)
    assert_only_the_later_upload(s3, a, b, results)
    assert s3.list_multipart_uploads(Bucket=OUTPUT).get("Uploads", []) == []


def test_rejected_rows_of_the_earlier_file_never_stay_beside_the_later_outputs(s3: Any) -> None:
    # GIVEN the earlier file's rejected rows in place (a contract dropped some of its rows)
    a, b = files(("jsonl",), ("jsonl",))
    s3.put_object(
        Bucket=OUTPUT,
        Key="race/x.csv.rejected.jsonl",
        Body=b'{"row":2}\n',
        Metadata=Stamp(version="v1", key=a.key, uploaded=EARLY).metadata(),
    )
    # WHEN the later file (no rejected rows) publishes
    results = race(s3, a, b, serial("b"))
    # THEN the rejected rows of the other file are gone: the outputs are one file's
    assert_only_the_later_upload(s3, a, b, results)


def test_an_object_chute_did_not_write_is_never_removed(s3: Any) -> None:
    # GIVEN somebody's own object where a format chute doesn't write for this file would go
    s3.put_object(Bucket=OUTPUT, Key="race/x.csv.parquet", Body=b"theirs")
    a, b = files(("jsonl",), ("jsonl",))
    race(s3, a, b, serial("b"))
    # THEN it is left alone
    assert s3.get_object(Bucket=OUTPUT, Key="race/x.csv.parquet")["Body"].read() == b"theirs"


def test_stamps_order_two_keys_by_upload_time_then_key() -> None:
    early = Stamp("v9", "FF", key="x.csv", uploaded=EARLY)
    late = Stamp("v1", "00", key="x.csv.gz", uploaded=LATE)
    assert late.newer_than(early) and not early.newer_than(late)  # sequencers not compared
    same_ms = Stamp("v2", "01", key="x.csv.zst", uploaded=LATE)
    assert same_ms.newer_than(late)  # the same millisecond: the greater key
    # one key's versions still compare by sequencer only
    assert Stamp("v2", "02", key="x.csv", uploaded=EARLY).newer_than(
        Stamp("v1", "01", key="x.csv", uploaded=LATE)
    )
    # a key with a percent or unicode survives S3's ASCII metadata
    odd = Stamp("v", key="déjà vu/100% x.csv", uploaded=EARLY)
    assert Stamp.from_metadata(odd.metadata()) == odd
    assert all(v.isascii() for v in odd.metadata().values())
