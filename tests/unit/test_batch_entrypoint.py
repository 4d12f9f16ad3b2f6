"""The Batch container's entrypoint: main(argv, environ) -> exit code, per docs/step-events.md."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from botocore.config import Config

from batch import entrypoint
from batch.entrypoint import main, stop_on_sigterm
from tasks import names
from tasks.adapters.s3 import S3Store
from tasks.errors import StorageUnavailable
from tasks.formats import OutputFormat, keys
from tasks.models import FileSpec, ObjectRef, Target
from tasks.workflow import ExitCode
from tests.support.unit import OUTPUT, STAGING

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = """
[settings]
unmatched = "text"

[contracts.orders]
match = { prefixes = ["in/"] }
outputs = ["jsonl"]

[[contracts.orders.columns]]
name = "id"
type = "int"
"""


def job_environ(
    client: Any,
    key: str,
    body: bytes | None,
    *,
    formats: tuple[OutputFormat, ...] = ("jsonl",),
    contract: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """Upload ``body`` (unless None) and return the environment the state machine would set."""
    etag = "0123456789abcdef0123456789abcdef"
    size = 0
    if body is not None:
        client.put_object(Bucket=STAGING, Key=key, Body=body)
        head = client.head_object(Bucket=STAGING, Key=key)
        etag, size = head["ETag"].strip('"'), head["ContentLength"]
    file = FileSpec(ref=ObjectRef(bucket=STAGING, key=key, size=size, etag=etag))
    target = Target(bucket=OUTPUT, key=key, formats=formats, contract=contract)
    return {
        names.ENV_JOB_FILE: json.dumps(file.to_dict()),
        names.ENV_JOB_TARGET: json.dumps(target.to_dict()),
        names.ENV_JOB_EXECUTION: "exec-batch-1",
        **extra,
    }


def stderr_report(captured: str) -> dict[str, Any]:
    lines = captured.strip().splitlines()
    assert len(lines) == 1, captured
    report: dict[str, Any] = json.loads(lines[0])
    return report


def output_keys(client: Any) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=OUTPUT).get("Contents", [])]


def test_exit_codes_match_the_contract() -> None:
    # The values are part of the workflow's contract (docs/step-events.md, evaluateOnExit).
    assert [int(code) for code in ExitCode] == [0, 64, 65, 66, 70, 73, 75]
    contract = (REPO / "docs" / "step-events.md").read_text()
    for code in (0, 64, 65, 66, 70, 73, 75):
        assert f"| {code} |" in contract


def test_success_writes_the_target_and_exits_0(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a CSV in staging and the job's environment (both output formats)
    key = "in/big file ü.csv"
    environ = job_environ(s3, key, b"id,name\n1,a\n2,b\n", formats=("jsonl", "parquet"))
    # WHEN the container runs
    code = main([], environ, store=S3Store(s3))
    # THEN it exits 0, wrote both targets, and said nothing on stderr
    assert code == ExitCode.OK
    body = s3.get_object(Bucket=OUTPUT, Key=f"{key}.jsonl")["Body"].read()
    assert body == b'{"id":"1","name":"a"}\n{"id":"2","name":"b"}\n'
    parquet = s3.get_object(Bucket=OUTPUT, Key=f"{key}.parquet")["Body"].read()
    assert pq.read_table(io.BytesIO(parquet)).to_pylist() == [
        {"id": "1", "name": "a"},
        {"id": "2", "name": "b"},
    ]
    assert capsys.readouterr().err == ""


def test_help_prints_usage_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"], {}) == ExitCode.OK
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m batch")
    assert names.ENV_JOB_FILE in out


def test_unknown_argument_exits_64(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--fast"], {}) == ExitCode.USAGE
    assert stderr_report(capsys.readouterr().err) == {
        "error": "UsageError",
        "cause": "unexpected arguments: --fast",
        "exitCode": 64,
    }


@pytest.mark.parametrize(
    ("change", "error", "cause"),
    [
        ({names.ENV_JOB_FILE: ""}, "UsageError", "CHUTE_JOB_FILE is required"),
        ({names.ENV_JOB_TARGET: ""}, "UsageError", "CHUTE_JOB_TARGET is required"),
        ({names.ENV_JOB_EXECUTION: ""}, "UsageError", "CHUTE_JOB_EXECUTION is required"),
        ({names.ENV_JOB_FILE: "{not json"}, "UsageError", "CHUTE_JOB_FILE is not valid JSON"),
        ({names.ENV_JOB_TARGET: '"a string"'}, "ModelError", "target must be an object"),
        (
            {
                names.ENV_JOB_FILE: json.dumps(
                    {"bucket": STAGING, "key": "k", "size": 1, "compression": "lzma"}
                )
            },
            "ModelError",
            "unknown compression 'lzma'",
        ),
        (
            {names.ENV_JOB_TARGET: json.dumps({"bucket": OUTPUT, "key": "k", "formats": ["xml"]})},
            "ModelError",
            "formats must be a non-empty list",
        ),
        (
            {names.ENV_CONTRACTS_FILE: "/nonexistent/contracts.toml"},
            "SettingsError",
            "does not exist",
        ),
        ({names.ENV_PART_SIZE_BYTES: "1024"}, "SettingsError", "must be at least"),
        ({names.ENV_PART_SIZE_BYTES: "lots"}, "SettingsError", "must be an integer"),
    ],
)
def test_bad_job_parameters_exit_64(
    s3: Any,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    error: str,
    cause: str,
) -> None:
    # GIVEN a valid job environment with one parameter missing or malformed
    environ = {**job_environ(s3, "in/a.csv", b"a\n1\n"), **change}
    # WHEN the container runs
    code = main([], environ, store=S3Store(s3))
    # THEN EX_USAGE, one JSON line on stderr naming the problem, and nothing written
    assert code == ExitCode.USAGE
    report = stderr_report(capsys.readouterr().err)
    assert report["error"] == error
    assert cause in report["cause"]
    assert report["exitCode"] == 64
    assert output_keys(s3) == []


def test_bad_file_exits_65(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a file with a ragged row
    environ = job_environ(s3, "in/bad.csv", b"a,b\n1,2\n3\n")
    # WHEN the container runs
    code = main([], environ, store=S3Store(s3))
    # THEN EX_DATAERR with the PermanentError's class name and message, and no output
    assert code == ExitCode.DATAERR
    assert stderr_report(capsys.readouterr().err) == {
        "error": "MalformedContent",
        "cause": "row 3: expected 2 fields as in the header, found 1",
        "exitCode": 65,
    }
    # no output, only the rejection left for the Quarantine step's report
    failure = keys.batch_failure_key("exec-batch-1")
    assert output_keys(s3) == [failure]
    left = json.loads(s3.get_object(Bucket=OUTPUT, Key=failure)["Body"].read())
    assert left == {
        "error": "MalformedContent",
        "cause": "row 3: expected 2 fields as in the header, found 1",
        "exitCode": 65,
        "execution": "exec-batch-1",
        "key": "in/bad.csv",
    }


def test_a_rejection_that_cant_be_left_still_exits_65(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    class NoWrites(S3Store):
        def put_json(self, bucket: str, key: str, document: dict[str, Any]) -> None:
            raise StorageUnavailable("S3 answered SlowDown")

    environ = job_environ(s3, "in/bad.csv", b"a,b\n1,2\n3\n")
    assert main([], environ, store=NoWrites(s3)) == ExitCode.DATAERR
    assert "failure not left" in capsys.readouterr().out


def contracts_file(tmp_path: Path, text: str = CONTRACTS) -> str:
    path = tmp_path / "contracts.toml"
    path.write_text(text)
    return str(path)


def test_contract_violation_exits_65(
    s3: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # GIVEN a contract the file breaks (a value that isn't an int)
    environ = job_environ(
        s3,
        "in/orders.csv",
        b"id\n1\nx\n",
        formats=("jsonl", "parquet"),
        contract="orders",
        **{names.ENV_CONTRACTS_FILE: contracts_file(tmp_path)},
    )
    # WHEN the container runs THEN EX_DATAERR (a PermanentError: quarantine), nothing written
    assert main([], environ, store=S3Store(s3)) == ExitCode.DATAERR
    report = stderr_report(capsys.readouterr().err)
    assert (report["error"], report["exitCode"]) == ("ContractViolation", 65)
    assert json.loads(report["cause"])["problems"] == [
        {"row": 3, "column": "id", "value": "x", "reason": "not a valid int"}
    ]
    assert output_keys(s3) == [keys.batch_failure_key("exec-batch-1")]


def test_typed_conversion_with_the_contracts_file_exits_0(s3: Any, tmp_path: Path) -> None:
    environ = job_environ(
        s3,
        "in/orders.csv",
        b"id\n1\n2\n",
        contract="orders",
        **{names.ENV_CONTRACTS_FILE: contracts_file(tmp_path)},
    )
    assert main([], environ, store=S3Store(s3)) == ExitCode.OK
    body = s3.get_object(Bucket=OUTPUT, Key="in/orders.csv.jsonl")["Body"].read()
    assert body == b'{"id":1}\n{"id":2}\n'


def test_broken_contracts_file_exits_64(
    s3: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # GIVEN a contracts file that isn't valid TOML (a deployment problem, not the file's)
    environ = job_environ(
        s3,
        "in/a.csv",
        b"a\n1\n",
        **{names.ENV_CONTRACTS_FILE: contracts_file(tmp_path, "[settings\n")},
    )
    # WHEN the container runs THEN EX_USAGE: the file stays in staging
    assert main([], environ, store=S3Store(s3)) == ExitCode.USAGE
    report = stderr_report(capsys.readouterr().err)
    assert (report["error"], report["exitCode"]) == ("ContractConfigError", 64)
    assert output_keys(s3) == []


def test_missing_source_exits_66(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a job for an object that is no longer in staging
    environ = job_environ(s3, "in/gone.csv", None)
    # WHEN the container runs THEN EX_NOINPUT (a StaleEventError)
    assert main([], environ, store=S3Store(s3)) == ExitCode.NOINPUT
    report = stderr_report(capsys.readouterr().err)
    assert (report["error"], report["exitCode"]) == ("SourceMissing", 66)


def test_changed_source_exits_66(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a job whose object was overwritten after validation
    environ = job_environ(s3, "in/changed.csv", b"a\n1\n")
    s3.put_object(Bucket=STAGING, Key="in/changed.csv", Body=b"a\n2\n")
    # WHEN the container runs THEN EX_NOINPUT (SourceChanged)
    assert main([], environ, store=S3Store(s3)) == ExitCode.NOINPUT
    report = stderr_report(capsys.readouterr().err)
    assert (report["error"], report["exitCode"]) == ("SourceChanged", 66)
    # AND it leaves its error for NameBatchFailure to raise again (no output)
    left = json.loads(
        s3.get_object(Bucket=OUTPUT, Key="_chute/batch-failures/exec-batch-1.json")["Body"].read()
    )
    assert (left["error"], left["exitCode"]) == ("SourceChanged", 66)
    assert "changed since the event" in left["cause"], left["cause"]
    assert [k for k in output_keys(s3) if not k.startswith("_chute/")] == []


def test_unexpected_exception_exits_70(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a store that fails in a way nobody planned for
    class BrokenStore(S3Store):
        def open_stream(self, ref: ObjectRef) -> Any:
            raise RuntimeError("bug in the store")

    environ = job_environ(s3, "in/a.csv", b"a\n1\n")
    # WHEN the container runs THEN EX_SOFTWARE with the original class name
    assert main([], environ, store=BrokenStore(s3)) == ExitCode.SOFTWARE
    assert stderr_report(capsys.readouterr().err) == {
        "error": "RuntimeError",
        "cause": "bug in the store",
        "exitCode": 70,
    }


def test_access_denied_is_unexpected_not_transient(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN S3 refusing the read (a misconfiguration: retrying won't help)
    environ = job_environ(s3, "in/a.csv", b"a\n1\n")
    fail_get_object(s3, status=403, code="AccessDenied")
    # WHEN the container runs THEN EX_SOFTWARE
    assert main([], environ, store=S3Store(s3)) == ExitCode.SOFTWARE
    report = stderr_report(capsys.readouterr().err)
    assert (report["error"], report["exitCode"]) == ("AccessDenied", 70)


def fail_get_object(client: Any, *, status: int, code: str) -> None:
    """Make every GetObject answer with an S3 error, as the service would."""

    def respond(**_: Any) -> tuple[Any, dict[str, Any]]:
        http = SimpleNamespace(status_code=status, headers={})
        return http, {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {}}

    client.meta.events.register("before-call.s3.GetObject", respond)


def test_throttling_exits_75(s3: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN S3 answering SlowDown
    environ = job_environ(s3, "in/a.csv", b"a\n1\n")
    fail_get_object(s3, status=503, code="SlowDown")
    # WHEN the container runs THEN EX_TEMPFAIL (a TransientError), so Batch retries the job
    assert main([], environ, store=S3Store(s3)) == ExitCode.TEMPFAIL
    report = stderr_report(capsys.readouterr().err)
    assert report["error"] == "StorageUnavailable"
    assert "SlowDown" in report["cause"]
    assert report["exitCode"] == 75


def test_store_is_built_by_default_when_not_injected(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no injected store: main builds S3Store() (here on moto through the mocked boto3)
    environ = job_environ(s3, "in/default.csv", b"k\nv\n")
    built: list[S3Store] = []
    real = entrypoint.S3Store

    def build() -> S3Store:
        built.append(real())
        return built[-1]

    monkeypatch.setattr(entrypoint, "S3Store", build)
    # WHEN the container runs THEN it converts with that store
    assert main([], environ) == ExitCode.OK
    assert len(built) == 1
    assert output_keys(s3) == ["in/default.csv.jsonl"]


def run_module(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batch", *args],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_dash_m_batch_is_the_container_command() -> None:
    # GIVEN the exact container command from tasks.names, with no job parameters
    assert names.BATCH_COMMAND == ("python", "-m", "batch")
    # WHEN run as a process
    result = run_module(env={})
    # THEN the process exit status is the code main returned, with one JSON line on stderr
    assert result.returncode == ExitCode.USAGE
    assert stderr_report(result.stderr) == {
        "error": "UsageError",
        "cause": "CHUTE_JOB_EXECUTION is required",
        "exitCode": 64,
    }
    assert run_module("--help", env={}).returncode == ExitCode.OK


class _StallsAfter(io.RawIOBase):
    """Serves ``limit`` bytes of ``inner``, then hangs (like a slow network read)."""

    def __init__(self, inner: Any, limit: int) -> None:
        self._inner = inner
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            threading.Event().wait(60)  # interrupted by the signal handler's exception
            return 0
        data = self._inner.read(min(len(buffer), self._left))
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def test_sigterm_stops_the_job_as_transient_and_leaves_no_upload_behind(
    s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a 26 MB file whose read stalls after 20 MiB, so output parts are already uploaded
    # (the native core hands a chunk's output back a few chunks later: results stay in order)
    rows = b"".join(b"%d,name-%d,%d.50\n" % (i, i, i) for i in range(1_200_000))
    body = b"id,name,amount\n" + rows
    environ = job_environ(
        s3, "in/slow.csv", body, **{names.ENV_PART_SIZE_BYTES: str(5 * 1024 * 1024)}
    )

    class Stalling(S3Store):
        def open_stream(self, ref: ObjectRef) -> Any:
            return io.BufferedReader(_StallsAfter(super().open_stream(ref), 20 * 1024 * 1024))

    def uploads() -> list[Any]:
        return list(s3.list_multipart_uploads(Bucket=OUTPUT).get("Uploads", []))

    seen: list[Any] = []

    def stop_when_uploading() -> None:
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline:
            seen.extend(uploads())
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # what Batch sends on a timeout or TerminateJob

    previous = signal.getsignal(signal.SIGTERM)
    stop_on_sigterm()
    stopper = threading.Thread(target=stop_when_uploading)
    try:
        stopper.start()
        code = main([], environ, store=Stalling(s3))
    finally:
        stopper.join()
        signal.signal(signal.SIGTERM, previous)
    # THEN a transient exit (rerunnable, not the file's fault), no output, no upload left open
    assert code == ExitCode.TEMPFAIL
    report = stderr_report(capsys.readouterr().err)
    assert (report["error"], report["cause"]) == ("Stopped", "stopped by signal SIGTERM")
    assert output_keys(s3) == []
    assert seen and uploads() == []  # one was open when the signal came, and was aborted


def test_a_stop_inside_an_s3_request_is_not_retried_away_by_botocore() -> None:
    # GIVEN an S3 endpoint that takes the request and never answers, and the SIGTERM handler
    # (botocore wraps any Exception raised during a request into a retried HTTPClientError)
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def hold() -> None:
        while len(held) < 3:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=hold, daemon=True).start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{listener.getsockname()[1]}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"mode": "standard", "max_attempts": 2}, read_timeout=3),
    )

    def stop_once_waiting() -> None:
        deadline = time.monotonic() + 10
        while not held and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # the HEAD is now waiting for its answer
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    stop_on_sigterm()
    stopper = threading.Thread(target=stop_once_waiting)
    try:
        stopper.start()
        # WHEN Batch stops the job while its main thread waits for an S3 answer
        with pytest.raises(entrypoint.Stopped):
            S3Store(client).head(ObjectRef(bucket="b", key="k", size=0))
    finally:
        stopper.join()
        signal.signal(signal.SIGTERM, previous)
        listener.close()
        for conn in held:
            conn.close()
    # THEN the stop reached the job on the first attempt (not retried, not a timeout later)
    assert len(held) == 1


@pytest.mark.parametrize(
    ("key", "body", "error", "cause"),
    [
        (
            "in/x.csv",
            "id,name\n1,2\n".encode("utf-16-le"),
            "MalformedContent",
            "header (row 1): column 1 has a NUL byte (0x00) in its name",
        ),
        (
            "in/x.csv.gz",
            gzip.compress(b"a,b\n" + b"0,0\n" * (2 * 1024 * 1024), 9),
            "DecompressionLimitExceeded",
            "the gzip content expands more than 3 times",
        ),
    ],
    ids=["utf16le-header", "gzip-bomb"],
)
def test_content_that_used_to_crash_or_flood_exits_65_with_its_name(
    s3: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    body: bytes,
    error: str,
    cause: str,
) -> None:
    # GIVEN the job's settings limit expansion to 3:1 past a 1 MiB grace (the bomb holds 8 MiB)
    monkeypatch.setattr(names, "DECOMPRESSION_RATIO_GRACE_BYTES", 1024 * 1024)
    environ = job_environ(
        s3, key, body, formats=("jsonl", "parquet"), **{names.ENV_MAX_DECOMPRESSION_RATIO: "3"}
    )
    file = json.loads(environ[names.ENV_JOB_FILE])
    file["compression"] = "gzip" if key.endswith(".gz") else "none"
    environ[names.ENV_JOB_FILE] = json.dumps(file)
    # WHEN the container runs
    code = main([], environ, store=S3Store(s3))
    # THEN EX_DATAERR with the named error (no crash), nothing published
    assert code == ExitCode.DATAERR
    report = stderr_report(capsys.readouterr().err)
    assert report["error"] == error
    assert report["cause"].startswith(cause)
    assert output_keys(s3) == [keys.batch_failure_key("exec-batch-1")]


def test_inferred_types_that_widen_restart_in_the_batch_job_too(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a plan that infers types, and a value after the first chunk (1 KiB here) that
    # widens a column
    import dataclasses

    from tasks.convert import domain

    plain = domain.engine_options
    monkeypatch.setattr(
        domain,
        "engine_options",
        lambda *a, **k: dataclasses.replace(plain(*a, **k), chunk_bytes=1024),
    )
    key = "in/late.csv"
    environ = job_environ(s3, key, b"id,v\n" + b"1,2\n" * 1000 + b"2,x\n")
    target = Target(bucket=OUTPUT, key=key, formats=("jsonl",), infer=True)
    environ[names.ENV_JOB_TARGET] = json.dumps(target.to_dict())
    # WHEN the container runs
    code = main([], environ, store=S3Store(s3))
    # THEN the file was converted again with v as text, and nothing of the first run is left
    assert code == ExitCode.OK
    lines = s3.get_object(Bucket=OUTPUT, Key=f"{key}.jsonl")["Body"].read().splitlines()
    assert len(lines) == 1001
    assert json.loads(lines[0]) == {"id": 1, "v": "2"}
    assert json.loads(lines[-1]) == {"id": 2, "v": "x"}
    assert s3.list_multipart_uploads(Bucket=OUTPUT).get("Uploads", []) == []
