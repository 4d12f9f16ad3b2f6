"""A fanned-out conversion equals the single-worker conversion exactly (tasks.fanout): JSON Lines
byte for byte, Parquet row for row and type for type — over random cut points with quoted
newlines straddling them, a late value that widens one part's types, a cut guessed wrong, bad
content in one part (the file's row named), and a newer version uploaded before the commit."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pyarrow.parquet as pq
import pytest
import zstandard

from tasks.adapters.s3 import S3Store
from tasks.convert.domain import convert
from tasks.data_contracts.config import parse_contracts
from tasks.data_contracts.model import ContractSet
from tasks.errors import ContractViolation, MalformedContent, StorageUnavailable, Superseded
from tasks.fanout import domain
from tasks.fanout.domain import FanOut
from tasks.fanout.part import convert_part
from tasks.formats import Compression, keys
from tasks.models import FileSpec, ObjectRef, Plan, Target
from tasks.settings import ConvertSettings
from tests.support import zstd_layouts
from tests.support.unit import OUTPUT, STAGING

SETTINGS = ConvertSettings()
FORMATS = ("jsonl", "parquet")


def _row(rng: random.Random, i: int) -> str:
    note = rng.choice(["plain", '"two\nlines"', '"a, b"', '"say ""hi"""', "", "NA"])
    when = f"2024-0{1 + i % 9}-1{i % 10}"
    return f"{i},{rng.randint(-500, 500) / 4},{note},{when},{rng.choice(['true', 'false'])}"


def csv_body(rows: int, seed: int, tail: list[str] | None = None) -> bytes:
    rng = random.Random(seed)
    lines = ["id,amount,note,day,flag", *(_row(rng, i) for i in range(rows)), *(tail or [])]
    return ("\n".join(lines) + "\n").encode()


def _stage(
    s3: Any,
    key: str,
    body: bytes,
    *,
    infer: bool = True,
    compression: Compression = "none",
    contract: str | None = None,
) -> Plan:
    s3.put_bucket_versioning(Bucket=STAGING, VersioningConfiguration={"Status": "Enabled"})
    resp = s3.put_object(Bucket=STAGING, Key=key, Body=body)
    ref = ObjectRef(
        bucket=STAGING,
        key=key,
        size=len(body),
        etag=resp["ETag"].strip('"'),
        version_id=resp["VersionId"],
        sequencer="00AA",
        uploaded="2026-12-06T00:00:00.000Z",
    )
    target = Target(
        bucket=OUTPUT, key=keys.output_base(key), formats=FORMATS, infer=infer, contract=contract
    )
    return Plan(file=FileSpec(ref=ref, compression=compression, delimiter=","), target=target)


def _manifest(store: S3Store, planned: dict[str, Any]) -> list[dict[str, Any]]:
    """The round's items, as the Distributed Map's ItemReader reads them: the state payload
    carries the manifest's key only."""
    assert "items" not in planned
    items: list[dict[str, Any]] = store.get_json(planned["bucket"], planned["manifest"])
    return items


def fan_out(
    store: S3Store,
    plan: Plan,
    part_bytes: int,
    *,
    before_commit: Any = None,
    contracts: ContractSet | None = None,
) -> tuple[dict[str, Any], list[int]]:
    """The workflow's loop: plan, each round's Map over its items, commit. Returns the output
    and how many parts each round converted."""
    contract = contracts.get(plan.target.contract) if contracts and plan.target.contract else None
    planned = domain.plan_parts(plan, store, "ex-1", part_bytes, contract)
    rounds = []
    while True:
        fanout, items = FanOut.from_dict(planned), _manifest(store, planned)
        rounds.append(len(items))
        for item in items:
            convert_part(
                plan, store, SETTINGS, fanout.execution, fanout.data_start, item, contracts
            )
        if before_commit is not None:
            before_commit()
        result = domain.commit(plan, store, fanout, contract)
        if "output" in result:
            return result["output"], rounds
        planned = result["again"]


def _outputs(s3: Any, key: str) -> tuple[bytes, Any]:
    jsonl = s3.get_object(Bucket=OUTPUT, Key=keys.output_key(key, "jsonl"))["Body"].read()
    parquet = s3.get_object(Bucket=OUTPUT, Key=keys.output_key(key, "parquet"))["Body"].read()
    return jsonl, pq.read_table(io.BytesIO(parquet))


def _single(
    s3: Any, store: S3Store, body: bytes, *, infer: bool = True, compression: Compression = "none"
) -> tuple[bytes, Any]:
    key = "single/data.csv" + (".zst" if compression == "zstd" else "")
    plan = _stage(s3, key, body, infer=infer, compression=compression)
    convert(plan, store, SETTINGS)
    return _outputs(s3, "single/data.csv")


def _left_behind(s3: Any) -> list[str]:
    """What a fan-out left but its verdict (kept for a retried commit, expired by the stack)."""
    listed = s3.list_objects_v2(Bucket=OUTPUT, Prefix=keys.FANOUT_PREFIX)
    uploads = s3.list_multipart_uploads(Bucket=OUTPUT).get("Uploads", [])
    objects = [o["Key"] for o in listed.get("Contents", [])]
    verdicts = [k for k in objects if k.endswith("/" + keys.FANOUT_OUTCOME)]
    return [k for k in objects if k not in verdicts] + [u["Key"] for u in uploads]


@pytest.mark.parametrize("infer", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_fanned_out_equals_single_worker(s3: Any, store: S3Store, seed: int, infer: bool) -> None:
    body = csv_body(3000, seed)
    part_bytes = random.Random(seed).randint(2_000, 20_000)
    plan = _stage(s3, "big/data.csv", body, infer=infer)
    output, rounds = fan_out(store, plan, part_bytes)
    jsonl, table = _outputs(s3, "big/data.csv")
    single_jsonl, single_table = _single(s3, store, body, infer=infer)
    assert rounds[0] > 3, "the file was cut into parts"
    assert jsonl == single_jsonl
    assert table.schema == single_table.schema
    assert table.equals(single_table)
    assert output["rows"] == 3000
    assert _left_behind(s3) == []


def test_a_late_value_widens_the_whole_file_and_only_the_parts_that_differ_run_again(
    s3: Any, store: S3Store
) -> None:
    body = csv_body(3000, 1, tail=["3000,1.5,x,not a date,maybe"])
    plan = _stage(s3, "big/late.csv", body)
    output, rounds = fan_out(store, plan, 8_000)
    jsonl, table = _outputs(s3, "big/late.csv")
    single_jsonl, single_table = _single(s3, store, body)
    assert jsonl == single_jsonl and table.equals(single_table)
    assert output["schema"] == {
        "id": "int",
        "amount": "float",
        "note": "string",
        "day": "string",
        "flag": "string",
    }
    assert len(rounds) == 2 and 0 < rounds[1] < rounds[0]


def test_a_wrong_cut_is_found_and_the_parts_converted_as_one(s3: Any, store: S3Store) -> None:
    body = csv_body(2000, 2)
    plan = _stage(s3, "big/cut.csv", body)
    planned = domain.plan_parts(plan, store, "ex-1", 10_000)
    # a guess gone wrong: move the second cut into a quoted field that holds a newline
    state = store.get_json(OUTPUT, keys.fanout_key("ex-1", "state.json"))
    inside = body.index(b'"two\nlines"', state["parts"][1]["start"]) + 4
    state["parts"][0]["end"] = state["parts"][1]["start"] = inside
    store.put_json(OUTPUT, keys.fanout_key("ex-1", "state.json"), state)
    store.put_json(OUTPUT, planned["manifest"], state["parts"])
    rounds = []
    while True:
        fanout, items = FanOut.from_dict(planned), _manifest(store, planned)
        rounds.append(len(items))
        for item in items:
            convert_part(plan, store, SETTINGS, "ex-1", fanout.data_start, item)
        result = domain.commit(plan, store, fanout)
        if "output" in result:
            break
        planned = result["again"]
    assert rounds[1:] == [1]  # the two parts around the wrong cut, as one
    assert _outputs(s3, "big/cut.csv")[0] == _single(s3, store, body)[0]


def test_bad_content_names_the_files_row(s3: Any, store: S3Store) -> None:
    body = csv_body(3000, 3)
    lines = body.split(b"\n")
    lines[2500] += b",one too many"
    bad = b"\n".join(lines)
    plan = _stage(s3, "big/bad.csv", bad)
    with pytest.raises(MalformedContent) as fanned:
        fan_out(store, plan, 5_000)
    assert _left_behind(s3) == []
    with pytest.raises(MalformedContent) as single:
        convert(_stage(s3, "single/bad.csv", bad), store, SETTINGS)
    assert str(fanned.value) == str(single.value)  # the file's row, not the part's
    assert int(str(fanned.value).split()[1].rstrip(":")) > 2000


def test_a_newer_version_uploaded_before_the_commit_wins(s3: Any, store: S3Store) -> None:
    body = csv_body(1000, 4)
    plan = _stage(s3, "big/replaced.csv", body)

    def upload_newer() -> None:
        s3.put_object(Bucket=STAGING, Key="big/replaced.csv", Body=b"id\n1\n")

    with pytest.raises(Superseded):
        fan_out(store, plan, 5_000, before_commit=upload_newer)
    assert "Contents" not in s3.list_objects_v2(Bucket=OUTPUT, Prefix="big/")
    assert _left_behind(s3) == []  # the parts too: the fan-out is over


def test_abandon_removes_everything(s3: Any, store: S3Store) -> None:
    plan = _stage(s3, "big/gone.csv", csv_body(1000, 5))
    planned = domain.plan_parts(plan, store, "ex-9", 5_000)
    fanout = FanOut.from_dict(planned)
    for item in _manifest(store, planned):
        convert_part(plan, store, SETTINGS, "ex-9", fanout.data_start, item)
    assert _left_behind(s3)
    assert domain.abandon(store, fanout) > 0
    assert _left_behind(s3) == []


def test_fanout_round_trips() -> None:
    fanout = FanOut(OUTPUT, "ex", 10, 2, 7)
    document = json.loads(json.dumps(fanout.to_dict()))
    assert FanOut.from_dict(document) == fanout


class _CleanUpFails:
    """The store, but the first clean-up of a fan-out's objects fails (as if the commit's
    function stopped right after it kept its verdict)."""

    def __init__(self, store: S3Store) -> None:
        self._store = store
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def delete_prefix(self, bucket: str, prefix: str, **kw: Any) -> int:
        if not self.failed:
            self.failed = True
            raise StorageUnavailable("the function stopped")
        return self._store.delete_prefix(bucket, prefix, **kw)


def _converted(s3: Any, store: S3Store, key: str, body: bytes) -> tuple[Plan, FanOut]:
    """A file planned and its parts converted in one round: ready to commit."""
    plan = _stage(s3, key, body)
    planned = domain.plan_parts(plan, store, "ex-2", 5_000)
    fanout = FanOut.from_dict(planned)
    for item in _manifest(store, planned):
        convert_part(plan, store, SETTINGS, "ex-2", fanout.data_start, item)
    return plan, fanout


def test_a_commit_retried_after_its_answer_was_lost_answers_the_same(
    s3: Any, store: S3Store
) -> None:
    # GIVEN a commit that published the outputs and removed the parts
    plan, fanout = _converted(s3, store, "big/lost.csv", csv_body(1000, 6))
    first = domain.commit(plan, store, fanout)
    assert "output" in first and _left_behind(s3) == []
    published = _outputs(s3, "big/lost.csv")[0]
    # WHEN Step Functions retries it (the answer was lost)
    again = domain.commit(plan, store, fanout)
    # THEN it answers the same, and publishes nothing anew
    assert again == first
    assert _outputs(s3, "big/lost.csv")[0] == published
    assert _left_behind(s3) == []


def test_a_commit_stopped_before_its_clean_up_finishes_it_on_the_retry(
    s3: Any, store: S3Store
) -> None:
    plan, fanout = _converted(s3, store, "big/stopped.csv", csv_body(1000, 7))
    failing = _CleanUpFails(store)
    with pytest.raises(StorageUnavailable):
        domain.commit(plan, failing, fanout)  # type: ignore[arg-type]
    assert _left_behind(s3), "the parts are still there"
    result = domain.commit(plan, failing, fanout)  # type: ignore[arg-type]
    assert result["output"]["rows"] == 1000
    assert _left_behind(s3) == []


def test_a_rejecting_commit_retried_rejects_the_same_way(s3: Any, store: S3Store) -> None:
    lines = csv_body(1000, 8).split(b"\n")
    lines[700] += b",one too many"
    plan, fanout = _converted(s3, store, "big/rejected.csv", b"\n".join(lines))
    with pytest.raises(MalformedContent) as first:
        domain.commit(plan, store, fanout)
    with pytest.raises(MalformedContent) as again:
        domain.commit(plan, store, fanout)
    assert str(again.value) == str(first.value)


# --- zstd files of many frames, cut between them (tasks.fanout.frames) ------------------------
@pytest.mark.parametrize("layout", zstd_layouts.LAYOUTS)
@pytest.mark.parametrize("seed", range(3))
def test_a_multi_frame_zstd_file_fans_out_and_equals_the_single_worker(
    s3: Any, store: S3Store, layout: str, seed: int
) -> None:
    # GIVEN a file with quoted newlines, compressed as frames cut at arbitrary bytes
    rng = random.Random(seed)
    body = csv_body(3000, 20 + seed)
    compressed = zstd_layouts.multi_frame(body, layout, rng, 1_500, 9_000)
    plan = _stage(s3, "big/data.csv.zst", compressed, compression="zstd")
    # WHEN it fans out
    output, rounds = fan_out(store, plan, rng.randint(1_500, 6_000))
    # THEN its outputs are the single worker's, byte for byte and type for type
    jsonl, table = _outputs(s3, "big/data.csv")
    single_jsonl, single_table = _single(s3, store, compressed, compression="zstd")
    assert rounds[0] > 3, "the file was cut into parts"
    assert jsonl == single_jsonl
    assert table.schema == single_table.schema and table.equals(single_table)
    assert output["rows"] == 3000
    assert _left_behind(s3) == []


def test_a_single_frame_zstd_file_is_not_fanned_out(s3: Any, store: S3Store) -> None:
    plan = _stage(
        s3, "big/one.csv.zst", zstd_layouts.single_frame(csv_body(3000, 30)), compression="zstd"
    )
    planned = domain.plan_parts(plan, store, "ex-3", 2_000)
    assert planned["parts"] == 0 and planned["manifest"] is None
    assert _left_behind(s3) == []  # nothing written: the workflow converts it as one file


def test_a_wrong_cut_in_a_zstd_frame_is_found_and_the_parts_converted_as_one(
    s3: Any, store: S3Store
) -> None:
    body = csv_body(2000, 40)
    compressed = zstd_layouts.multi_frame(body, "pzstd", random.Random(4), 3_000, 6_000)
    plan = _stage(s3, "big/framecut.csv.zst", compressed, compression="zstd")
    planned = domain.plan_parts(plan, store, "ex-4", 4_000)
    # a guess gone wrong: move the first cut into a quoted field that holds a newline
    state = store.get_json(OUTPUT, keys.fanout_key("ex-4", "state.json"))
    first, second = state["parts"][0], state["parts"][1]
    frame = compressed[first["end"] : first["stop"]]
    content = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(frame)).read()
    inside = content.index(b'"two\nlines"', second["skip"]) + 4
    first["take"] = second["skip"] = inside
    store.put_json(OUTPUT, keys.fanout_key("ex-4", "state.json"), state)
    store.put_json(OUTPUT, planned["manifest"], state["parts"])
    rounds = []
    while True:
        fanout, items = FanOut.from_dict(planned), _manifest(store, planned)
        rounds.append(len(items))
        for item in items:
            convert_part(plan, store, SETTINGS, "ex-4", fanout.data_start, item)
        result = domain.commit(plan, store, fanout)
        if "output" in result:
            break
        planned = result["again"]
    assert rounds[1:] == [1]  # the two parts around the wrong cut, as one
    single = _single(s3, store, compressed, compression="zstd")[0]
    assert _outputs(s3, "big/framecut.csv")[0] == single


# --- a data contract's error budget, decided for the whole file -------------------------------
CONTRACTS = """
[contracts.orders]
match = { prefixes = ["big/"] }
outputs = ["jsonl", "parquet"]
on_error = { policy = "drop_rows", max_rejected_rows = 40, report_limit = 5 }

[[contracts.orders.columns]]
name = "id"
type = "int"
nullable = false

[[contracts.orders.columns]]
name = "amount"
type = "float"

[[contracts.orders.columns]]
name = "note"

[[contracts.orders.columns]]
name = "day"
type = "date"

[[contracts.orders.columns]]
name = "flag"
type = "bool"

[contracts.strict]
match = { prefixes = ["strict/"] }
outputs = ["jsonl", "parquet"]
on_error = { policy = "reject", report_limit = 3 }

[[contracts.strict.columns]]
name = "id"
type = "int"

[[contracts.strict.columns]]
name = "amount"
type = "float"

[[contracts.strict.columns]]
name = "note"

[[contracts.strict.columns]]
name = "day"
type = "date"

[[contracts.strict.columns]]
name = "flag"
type = "bool"
"""


def _with_bad_rows(rows: int, seed: int, bad: int) -> bytes:
    """``rows`` rows, ``bad`` of them (spread over the file) breaking the contract."""
    rng = random.Random(seed)
    records = [_row(rng, i) for i in range(rows)]
    for i in rng.sample(range(rows), bad):
        before_day = records[i].rsplit(",", 2)[0]  # the note may hold commas, the rest not
        records[i] = f"{before_day},{rng.choice(['not a date', '2024-13-40'])},maybe"
    return ("\n".join(["id,amount,note,day,flag", *records]) + "\n").encode()


def _contract_run(
    s3: Any, store: S3Store, name: str, body: bytes, contract: str, part_bytes: int
) -> tuple[Any, Any]:
    """(the fanned-out result or error, the single worker's), outputs compared by the caller."""
    contracts = parse_contracts(CONTRACTS)
    fanned: Any
    single: Any
    try:
        fanned = fan_out(
            store,
            _stage(s3, f"big/{name}", body, contract=contract),
            part_bytes,
            contracts=contracts,
        )[0]
    except ContractViolation as exc:
        fanned = exc
    try:
        single = convert(
            _stage(s3, f"single/{name}", body, contract=contract), store, SETTINGS, contracts
        ).to_dict()
    except ContractViolation as exc:
        single = exc
    return fanned, single


def _object(s3: Any, key: str) -> bytes | None:
    try:
        body: bytes = s3.get_object(Bucket=OUTPUT, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return body


@pytest.mark.parametrize("seed", range(3))
def test_a_contract_with_rejected_rows_fans_out_as_the_single_worker(
    s3: Any, store: S3Store, seed: int
) -> None:
    # GIVEN a file with a contract that drops bad rows, 30 of them spread over the file
    body = _with_bad_rows(3000, 50 + seed, 30)
    # WHEN it fans out in many parts, and a single worker converts it
    fanned, single = _contract_run(s3, store, "orders.csv", body, "orders", 5_000 + seed * 997)
    # THEN the outputs, the rejected rows (file-global row numbers) and the outcome are the same
    assert _outputs(s3, "big/orders.csv")[0] == _outputs(s3, "single/orders.csv")[0]
    assert _outputs(s3, "big/orders.csv")[1].equals(_outputs(s3, "single/orders.csv")[1])
    rejected = _object(s3, keys.rejected_key("big/orders.csv"))
    assert rejected is not None and rejected.count(b"\n") == 30
    assert rejected == _object(s3, keys.rejected_key("single/orders.csv"))
    assert (fanned["rows"], fanned["rejectedRows"]) == (2970, 30)
    assert (single["rows"], single["rejectedRows"]) == (2970, 30)
    assert fanned["rejectedKey"] == keys.rejected_key("big/orders.csv")
    assert _left_behind(s3) == []


@pytest.mark.parametrize(("contract", "bad"), [("orders", 60), ("strict", 7)])
def test_a_file_over_its_contracts_budget_is_rejected_as_the_single_worker_does(
    s3: Any, store: S3Store, contract: str, bad: int
) -> None:
    # GIVEN more bad rows than the contract allows (drop_rows: 40; reject: none)
    body = _with_bad_rows(3000, 60, bad)
    fanned, single = _contract_run(s3, store, f"{contract}.csv", body, contract, 6_000)
    # THEN both reject it, naming the same contract, reason and first problems (file rows)
    assert isinstance(fanned, ContractViolation) and isinstance(single, ContractViolation)
    report, alone = json.loads(str(fanned)), json.loads(str(single))
    assert (report["contract"], report.get("detail")) == (alone["contract"], alone.get("detail"))
    assert report["problems"][: len(alone["problems"])] == alone["problems"]
    assert report["problems"][0]["row"] > 2
    # AND the counts: the whole file's (a single worker's stop at the chunk that broke it)
    assert (report["badRows"], report["problemCount"]) == (bad, 2 * bad)
    assert alone["badRows"] <= report["badRows"]
    # AND nothing is published, nothing of the fan-out is left
    assert _object(s3, keys.output_key(f"big/{contract}.csv", "jsonl")) is None
    assert _object(s3, keys.rejected_key(f"big/{contract}.csv")) is None
    assert _left_behind(s3) == []


def test_a_header_the_contract_refuses_is_reported_as_the_single_worker_does(
    s3: Any, store: S3Store
) -> None:
    body = csv_body(2000, 70).replace(b"id,amount", b"ident,amount", 1)
    fanned, single = _contract_run(s3, store, "header.csv", body, "orders", 5_000)
    assert isinstance(fanned, ContractViolation) and str(fanned) == str(single)


def test_bad_content_after_the_budget_is_spent_reports_the_contract(
    s3: Any, store: S3Store
) -> None:
    # GIVEN a "reject" contract's bad value early, and a ragged row late in the file
    body = _with_bad_rows(3000, 80, 1)
    tail = body.rindex(b"\n2990,")
    bad_first = body[:tail] + b"\n2990,1.5,x,2024-01-01,true,one too many" + body[tail:]
    fanned, single = _contract_run(s3, store, "both.csv", bad_first, "strict", 5_000)
    # THEN the contract's verdict comes first, as reading in order finds it first
    assert isinstance(fanned, ContractViolation) and isinstance(single, ContractViolation)
    assert json.loads(str(fanned))["problems"] == json.loads(str(single))["problems"]
