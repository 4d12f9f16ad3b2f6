"""The floor under the embedded runtime's throughput (issue 25): what moto and botocore alone
cost for the work one small file needs, with none of chute's orchestration around it.

    .venv/bin/python bench/request_floor.py [--files 300] [--rounds 3] [--json]

Starts the embedded runtime in this process (persistence on, as `chute up`) and measures, per
small file:

- **S3**: the requests the handlers make for one small file on the Lambda route, replayed in
  order by one boto3 client over HTTP (validate: a ranged GET of the current object; convert:
  GET, HEAD, two conditional PUTs, three HEADs; archive: HEAD, conditional CopyObject, two
  DELETEs), on
  buckets the runtime persists but that send no events (so nothing else runs meanwhile). The
  client thread's CPU is the workers' share; the rest of the process's CPU is the endpoint's.
- **StartExecution** (the trigger's one call), on a one-state machine.
- **The interpreter**: executions of the pipeline's own definition with every Task mocked
  (workflows/tests/MockConfigFile.json, case LambdaRouteSucceeds): its ASL machinery and the
  executions' records.
- **Lambda invocations**: the interpreter's in-process Invoke of a function that returns at
  once, as the pipeline's three steps are invoked (the workers' own CPU not counted).

Printed: CPU per file for each part, endpoint and client side, and the sum; then what that sum
allows on this machine's cores: files/s if the endpoint (one process, one interpreter lock)
did nothing else, and if both cores did nothing else. The parts left out (the handlers' own
work, the Lambda workers' runtime, the event source, the S3 event, thread switches under load)
only add to it: a floor, not an estimate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from chute.local.embedded import EmbeddedAws, LocalSettings, free_port  # noqa: E402

MOCK_CONFIG = REPO / "workflows" / "tests" / "MockConfigFile.json"
EXPECTATIONS = REPO / "workflows" / "tests" / "expectations.json"
BODY = b"id,name,amount\n" + b"".join(b"%d,name-%d,%d.5\n" % (i, i, i) for i in range(20))


@dataclass
class Part:
    name: str
    requests_per_file: float
    endpoint_ms: float
    """CPU per file of the endpoint's side (the process's CPU less the calling thread's)."""
    client_ms: float
    """CPU per file of the calling thread (botocore, as in a Lambda worker)."""


def _cpu(run: Any, files: int) -> tuple[float, float]:
    """(endpoint ms per file, client ms per file) of ``run(i)`` for ``files`` files."""
    process, thread = time.process_time(), time.thread_time()
    for i in range(files):
        run(i)
    client = time.thread_time() - thread
    total = time.process_time() - process
    return (total - client) * 1000 / files, client * 1000 / files


def s3_part(aws: EmbeddedAws, files: int, round_: int = 0) -> Part:
    s3 = aws.client("s3")
    staging = aws.resources.archive_bucket  # versioned and persisted, as staging; no events
    output = aws.resources.output_bucket
    archive = aws.resources.quarantine_bucket
    stamp = {"chute-version": "v", "chute-key": "k", "chute-sequencer": "01"}

    def one(i: int) -> None:
        key = f"floor/{round_}/{i}.csv"
        put = s3.put_object(Bucket=staging, Key=key, Body=BODY)  # the upload
        version, etag = put["VersionId"], put["ETag"]
        # validate
        s3.get_object(Bucket=staging, Key=key, Range="bytes=0-65535")["Body"].read()
        # convert
        s3.get_object(Bucket=staging, Key=key, VersionId=version, IfMatch=etag)["Body"].read()
        s3.head_object(Bucket=staging, Key=key)
        for suffix in (".jsonl", ".parquet"):
            s3.put_object(
                Bucket=output, Key=key + suffix, Body=BODY, Metadata=stamp, IfNoneMatch="*"
            )
        for suffix in (".jsonl", ".parquet", ".rejected.jsonl"):
            with contextlib.suppress(s3.exceptions.ClientError):  # no rejected rows: a 404
                s3.head_object(Bucket=output, Key=key + suffix)
        # archive
        s3.head_object(Bucket=staging, Key=key, VersionId=version)
        s3.copy_object(
            Bucket=archive,
            Key=key,
            CopySource={"Bucket": staging, "Key": key, "VersionId": version},
            CopySourceIfMatch=etag,
            MetadataDirective="REPLACE",
            Metadata=stamp,
            IfNoneMatch="*",
        )
        s3.delete_object(Bucket=staging, Key=key, IfMatch=etag)
        s3.delete_object(Bucket=staging, Key=key, VersionId=version)

    one(-1)  # connections and caches warm
    endpoint, client = _cpu(one, files)
    return Part("S3 (upload + validate, convert, archive)", 15, endpoint, client)


def start_part(aws: EmbeddedAws, files: int) -> Part:
    sfn = aws.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"floor-pass-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=aws.resources.role_arn,
    )["stateMachineArn"]
    endpoint, client = _cpu(lambda i: sfn.start_execution(stateMachineArn=arn), files)
    return Part("StartExecution (trigger; a Pass machine's run included)", 1, endpoint, client)


def interpreter_part(aws: EmbeddedAws, files: int) -> Part:
    sfn = aws.client("stepfunctions")
    arn = f"{aws.resources.state_machine_arn}#LambdaRouteSucceeds"
    given = json.dumps(json.loads(EXPECTATIONS.read_text())["input"])
    started: list[str] = []
    process, thread = time.process_time(), time.thread_time()
    for _ in range(files):
        started.append(sfn.start_execution(stateMachineArn=arn, input=given)["executionArn"])
    running = set(started)
    while running:  # one ListExecutions a poll, not a DescribeExecution per execution
        time.sleep(0.1)
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=aws.resources.state_machine_arn, statusFilter="RUNNING"
        )
        running = {e["executionArn"] for page in pages for e in page["executions"]} & running
    client = time.thread_time() - thread
    total = time.process_time() - process
    failed = [e for e in started if sfn.describe_execution(executionArn=e)["status"] != "SUCCEEDED"]
    if failed:
        raise SystemExit(f"{len(failed)} mocked executions did not succeed, e.g. {failed[0]}")
    return Part(
        "interpreter (the pipeline's ASL, Tasks mocked)",
        0,
        (total - client) * 1000 / files,
        0.0,
    )


def invoke_part(aws: EmbeddedAws, files: int) -> Part:
    from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

    lam = boto_client_for(region=aws.resources.region, service="lambda")
    trigger = aws.resources.function_name("trigger")
    payload = json.dumps({"Records": []}).encode()

    def three(i: int) -> None:
        for _ in range(3):
            lam.invoke(FunctionName=trigger, Payload=payload)["Payload"].read()

    three(-1)
    process = time.process_time()
    for i in range(files):
        three(i)
    # in process: the calling thread stands for the interpreter's Task state, the endpoint's
    total = time.process_time() - process
    return Part("3 Lambda invocations (endpoint side)", 0, total * 1000 / files, 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument(
        "--rounds", type=int, default=3, help="each part's least CPU of this many rounds"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.files < 1 or args.rounds < 1:
        parser.error("--files and --rounds must be >= 1")
    settings = LocalSettings(
        port=free_port(),
        state_dir=Path(tempfile.mkdtemp(prefix="chute-floor-")),
        mock_config=MOCK_CONFIG,
    )
    with EmbeddedAws(settings) as aws:
        rounds = [
            [
                s3_part(aws, args.files, r),
                start_part(aws, args.files),
                interpreter_part(aws, min(args.files, 200)),
                invoke_part(aws, args.files),
            ]
            for r in range(args.rounds)
        ]
    # the least disturbed round of each part (this machine is shared)
    parts = [
        min(each, key=lambda p: p.endpoint_ms + p.client_ms) for each in zip(*rounds, strict=True)
    ]
    endpoint = sum(p.endpoint_ms for p in parts)
    client = sum(p.client_ms for p in parts)
    cores = os.cpu_count() or 1
    figures = {
        "parts": [asdict(p) for p in parts],
        "endpoint_ms_per_file": round(endpoint, 1),
        "client_ms_per_file": round(client, 1),
        "endpoint_bound_files_per_second": round(1000 / endpoint, 1),
        "cores": cores,
        "cores_bound_files_per_second": round(cores * 1000 / (endpoint + client), 1),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{'part':58} {'requests':>8} {'endpoint':>9} {'client':>8}  (CPU ms per file)")
    for p in parts:
        print(f"{p.name:58} {p.requests_per_file:8.0f} {p.endpoint_ms:9.1f} {p.client_ms:8.1f}")
    print(
        f"{'sum (a floor: the rest of the pipeline only adds)':58} {'':8} {endpoint:9.1f}"
        f" {client:8.1f}"
    )
    print(
        f"at most {figures['endpoint_bound_files_per_second']} files/s with the endpoint's one"
        f" interpreter lock doing nothing else; at most"
        f" {figures['cores_bound_files_per_second']} files/s with all {cores} cores doing nothing"
        " else"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
