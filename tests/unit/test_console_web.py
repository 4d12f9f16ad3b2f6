"""The web console without a browser: the graph's colours from a history, the layout, the AWS
mode's reads (Step Functions through botocore's Stubber, S3 on moto, CloudWatch metrics through
the Stubber), the cross-site and host checks, escaping, and the vendored htmx."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from chute.ops.deployment import Deployment
from chute.web import graph
from chute.web.data import ConsoleData, ConsoleError, Filters
from chute.web.metrics import TRANSIENT_LABEL, from_cloudwatch
from chute.web.s3_links import S3Links
from chute.web.server import Console, ConsoleServer, Forbidden, _json_object
from tasks.workflow_definition import Definition
from tests.support.unit import OUTPUT, QUARANTINE, STAGING

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = dict(Definition.load().document)
REGION = "eu-west-1"
MACHINE = f"arn:aws:states:{REGION}:111122223333:stateMachine:Chute-Pipeline"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
KEY = "in/<script>alert(1)</script>.csv"
SECRET = "secret-never-on-the-page"
BAD_CSV = b'id,name\n1,ok\n2,"<script>alert(2)</script>",extra\n'


def arn(name: str) -> str:
    return MACHINE.replace(":stateMachine:", ":execution:") + f":{name}"


def event(n: int, kind: str, **details: Any) -> dict[str, Any]:
    return {"id": n, "timestamp": NOW + timedelta(seconds=n), "type": kind, **details}


def entered(n: int, name: str) -> dict[str, Any]:
    return event(n, "TaskStateEntered", stateEnteredEventDetails={"name": name, "input": "{}"})


def exited(n: int, name: str) -> dict[str, Any]:
    return event(n, "TaskStateExited", stateExitedEventDetails={"name": name, "output": "{}"})


def failed(n: int, error: str) -> dict[str, Any]:
    details = {"resourceType": "lambda", "resource": "invoke", "error": error, "cause": "{}"}
    return event(n, "TaskFailed", taskFailedEventDetails=details)


QUARANTINED_HISTORY = [
    entered(1, "LoadConfig"),
    exited(2, "LoadConfig"),
    entered(3, "Validate"),
    event(4, "TaskScheduled"),
    failed(5, "StorageUnavailable"),
    event(6, "TaskScheduled"),
    event(7, "TaskSucceeded"),
    exited(8, "Validate"),
    entered(9, "RouteBySize"),
    exited(10, "RouteBySize"),
    entered(11, "ConvertInLambda"),
    event(12, "TaskScheduled"),
    failed(13, "MalformedContent"),
    entered(14, "LambdaConvertRejected"),
    exited(15, "LambdaConvertRejected"),
    entered(16, "Quarantine"),
    event(17, "TaskScheduled"),
    event(18, "TaskSucceeded"),
    exited(19, "Quarantine"),
    entered(20, "Rejected"),
    event(21, "ExecutionFailed", executionFailedEventDetails={"error": "MalformedContent"}),
]


# --- the graph ------------------------------------------------------------------------------
def test_each_state_is_coloured_by_what_happened_to_it() -> None:
    # GIVEN a history: Validate retried once, the conversion's error caught, a Fail state last
    # WHEN the records are read from it
    records = graph.records(DEFINITION, QUARANTINED_HISTORY, "FAILED")
    # THEN every state has its colour, attempts and errors
    status = {name: r.status for name, r in records.items()}
    assert status["LoadConfig"] == "succeeded"
    assert (status["Validate"], records["Validate"].attempts) == ("retried", 2)
    assert records["Validate"].errors == ["StorageUnavailable"]
    assert status["ConvertInLambda"] == "caught"
    assert status["Rejected"] == "failed"
    assert status["Archive"] == status["ConvertInBatch"] == "not-run"
    assert records["Quarantine"].seconds == 3.0


def test_a_task_failing_after_its_retries_is_failed_and_a_running_one_running() -> None:
    history = [entered(1, "Validate"), event(2, "TaskScheduled"), failed(3, "StorageUnavailable")]
    assert graph.records(DEFINITION, history, "FAILED")["Validate"].status == "failed"
    assert graph.records(DEFINITION, history[:2], "RUNNING")["Validate"].status == "running"


def test_the_layout_places_every_state_without_overlap_and_routes_every_transition() -> None:
    drawing = graph.layout(DEFINITION, graph.records(DEFINITION, QUARANTINED_HISTORY, "FAILED"))
    assert sorted(n.name for n in drawing.nodes) == sorted(DEFINITION["States"])
    assert len(drawing.arrows) == len(graph.transitions(DEFINITION))
    for a in drawing.nodes:
        for b in drawing.nodes:
            if a is not b:
                apart = (
                    a.x + a.width <= b.x
                    or b.x + b.width <= a.x
                    or a.y + a.height <= b.y
                    or b.y + b.height <= a.y
                )
                assert apart, (a.name, b.name)
    start = next(n for n in drawing.nodes if n.name == DEFINITION["StartAt"])
    assert all(start.y <= n.y for n in drawing.nodes)  # top to bottom from StartAt
    assert any(a.catch for a in drawing.arrows) and any(a.taken for a in drawing.arrows)


# --- AWS mode: Step Functions through the Stubber, S3 on moto ----------------------------
def describe(name: str, status: str, error: str | None = None, key: str = KEY) -> dict[str, Any]:
    document: dict[str, Any] = {
        "executionArn": arn(name),
        "stateMachineArn": MACHINE,
        "name": name,
        "status": status,
        "startDate": NOW,
        "input": json.dumps({"source": {"bucket": STAGING, "key": key, "size": len(BAD_CSV)}}),
    }
    if status != "RUNNING":
        document["stopDate"] = NOW + timedelta(seconds=21)
    if error:
        document.update(error=error, cause=json.dumps({"errorMessage": "row 3: 3 fields, not 2"}))
    return document


def aws_deployment(sfn: Any, s3: Any) -> Deployment:
    return Deployment(
        sfn=sfn,
        s3=s3,
        state_machine_arn=MACHINE,
        staging_bucket=STAGING,
        quarantine_bucket=QUARANTINE,
        output_bucket=OUTPUT,
        region=REGION,
        on_aws=True,
        session=boto3.Session(
            aws_access_key_id="AKIDCONSOLE", aws_secret_access_key=SECRET, region_name=REGION
        ),
    )


def quarantine_report(s3: Any) -> None:
    s3.put_object(Bucket=QUARANTINE, Key=KEY, Body=BAD_CSV)
    report = {
        "error": "MalformedContent",
        "message": "row 3: expected 2 fields as in the header, found 3",
        "failedState": "ConvertInLambda",
        "time": "2026-12-03T12:00:20.000Z",
        "file": {"status": "quarantined", "note": "beside", "bucket": QUARANTINE, "key": KEY},
    }
    s3.put_object(Bucket=QUARANTINE, Key=KEY + ".error.json", Body=json.dumps(report).encode())


def test_aws_mode_lists_files_with_counts_and_pages(s3: Any) -> None:
    # GIVEN two executions on AWS: one quarantined, one running; and an ignored staged file
    sfn = boto3.client("stepfunctions", region_name=REGION)
    s3.put_object(Bucket=STAGING, Key="in/readme.md", Body=b"x")
    with Stubber(sfn) as stub:
        stub.add_response(
            "list_executions",
            {
                "executions": [
                    {
                        "executionArn": arn(n),
                        "stateMachineArn": MACHINE,
                        "name": n,
                        "status": s,
                        "startDate": NOW,
                    }
                    for n, s in (("run-1", "RUNNING"), ("bad-1", "FAILED"))
                ]
            },
            {"stateMachineArn": MACHINE},
        )
        # each execution's file is read once (its input); the running one's outcome is its
        # status: not read
        stub.add_response("describe_execution", describe("run-1", "RUNNING", key="in/other.csv"))
        stub.add_response("describe_execution", describe("bad-1", "FAILED", "MalformedContent"))
        stub.add_response("describe_execution", describe("bad-1", "FAILED", "MalformedContent"))
        stub.add_response("get_execution_history", {"events": QUARANTINED_HISTORY})
        data = ConsoleData(aws_deployment(sfn, s3))
        # WHEN the list is read, one row a page, only the quarantined ones
        listing = data.listing(Filters(status="quarantined"), page=1, per_page=1)
        stub.assert_no_pending_responses()
    # THEN the counts cover every status, the row is the quarantined file's
    assert listing.counts == {
        "running": 1,
        "succeeded": 0,
        "quarantined": 1,
        "failed": 0,
        "stale": 0,
        "replaced": 0,
        "ignored": 1,
    }
    assert (listing.total, listing.pages) == (1, 1)
    (row,) = listing.rows
    assert (row.key, row.status, row.route, row.error, row.size) == (
        KEY,
        "quarantined",
        "lambda",
        "MalformedContent",
        len(BAD_CSV),
    )
    # AND a finished execution is read once: the next listing asks only for the running one
    with Stubber(sfn) as stub:
        stub.add_response(
            "list_executions",
            {
                "executions": [
                    {
                        "executionArn": arn("bad-1"),
                        "stateMachineArn": MACHINE,
                        "name": "bad-1",
                        "status": "FAILED",
                        "startDate": NOW,
                    }
                ]
            },
        )
        assert data.listing(Filters(), per_page=10).total == 2  # + the ignored file
        stub.assert_no_pending_responses()


def test_aws_mode_shows_the_deployed_graph_the_report_and_presigned_links(s3: Any) -> None:
    # GIVEN a quarantined execution on AWS, its report and original in quarantine
    quarantine_report(s3)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    deployed = dict(DEFINITION, Comment="the deployed one")
    # (one from before a Stale state existed: transitions to it are not drawn)
    deployed["States"] = {k: v for k, v in DEFINITION["States"].items() if k != "Stale"}
    with Stubber(sfn) as stub:
        failed_one = describe("bad-1", "FAILED", "MalformedContent")
        stub.add_response("describe_execution", failed_one)  # the view
        stub.add_response("get_execution_history", {"events": QUARANTINED_HISTORY})
        stub.add_response("get_execution_history", {"events": QUARANTINED_HISTORY})  # timeline
        stub.add_response("describe_execution", failed_one)
        stub.add_response(
            "describe_state_machine_for_execution",
            {
                "stateMachineArn": MACHINE,
                "name": "Chute-Pipeline",
                "definition": json.dumps(deployed),
                "roleArn": "arn:aws:iam::111122223333:role/r",
                "updateDate": NOW,
            },
            {"executionArn": arn("bad-1")},
        )
        # WHEN the execution is shown
        detail = ConsoleData(aws_deployment(sfn, s3)).detail(arn("bad-1"))
        stub.assert_no_pending_responses()
    # THEN the graph is the definition the execution ran with, with the console link
    assert {n.name for n in detail.drawing.nodes} == set(DEFINITION["States"]) - {"Stale"}
    assert detail.console_url and arn("bad-1") in detail.console_url
    assert detail.console_url.startswith(f"https://{REGION}.console.aws.amazon.com/states/")
    # AND the failure: the report's message, the bad row of the original, presigned downloads
    failure = detail.failure
    assert failure is not None and failure.error == "MalformedContent"
    assert failure.bad_rows == {3}
    assert [n for n, _ in failure.preview] == [1, 2, 3]
    assert failure.preview[2][1] == ["2", "<script>alert(2)</script>", "extra"]
    assert set(failure.links) == {"report (.error.json)", "original"}
    for url in failure.links.values():
        assert "X-Amz-Signature=" in url and "X-Amz-Expires=900" in url
        assert url.startswith(f"https://{QUARANTINE}.s3.{REGION}.amazonaws.com/")
        assert SECRET not in url
    # AND the page renders it all escaped
    console = Console(aws_deployment(sfn, s3), allowed_hosts=("h:1",))
    html = console.render("_execution.html", detail=detail).body.decode()
    assert "<script>alert" not in html
    assert "in/&lt;script&gt;alert(1)&lt;/script&gt;.csv" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert 'data-testid="aws-console"' in html
    assert SECRET not in html


def test_aws_glance_reads_chutes_cloudwatch_metrics() -> None:
    # GIVEN CloudWatch with chute's metrics: files by route, quarantines by error name
    cloudwatch = boto3.client(
        "cloudwatch", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    sfn = boto3.client("stepfunctions", region_name=REGION)
    now = NOW
    with Stubber(cloudwatch) as stub:
        stub.add_response(
            "list_metrics",
            {
                "Metrics": [
                    {
                        "Namespace": "chute",
                        "MetricName": "FilesQuarantined",
                        "Dimensions": [
                            {"Name": "service", "Value": "chute"},
                            {"Name": "error", "Value": "MalformedContent"},
                        ],
                    }
                ]
            },
            {"Namespace": "chute", "MetricName": "FilesQuarantined"},
        )
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    {
                        "Id": "files_lambda",
                        "Timestamps": [now - timedelta(minutes=1), now],
                        "Values": [3.0, 2.0],
                    },
                    {"Id": "bytes_lambda", "Timestamps": [now], "Values": [2048.0]},
                    {"Id": "quarantined_0", "Timestamps": [now], "Values": [4.0]},
                    {"Id": "failed", "Timestamps": [now], "Values": [5.0]},
                ]
            },
            {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY},
        )
        # WHEN the glance is read
        glance = from_cloudwatch(
            aws_deployment(sfn, None), hours=3, minutes=30, now=now, client=cloudwatch
        )
        stub.assert_no_pending_responses()
    # THEN per minute per route, and failures by error name
    assert glance.source == "CloudWatch"
    assert glance.files["lambda"][-2:] == [3.0, 2.0] and sum(glance.files["batch"]) == 0
    assert glance.bytes["lambda"][-1] == 2048.0
    assert glance.failures == {"MalformedContent": 4, TRANSIENT_LABEL: 5}


# --- cross-site requests, hosts, escaping ---------------------------------------------------
class Headers(dict[str, str]):
    pass


def test_actions_need_the_sessions_token_and_the_consoles_own_origin() -> None:
    console = Console(aws_deployment(None, None), allowed_hosts=("127.0.0.1:4570",))
    token = console.token_for("session-1")
    good = Headers({"Host": "127.0.0.1:4570", "Origin": "http://127.0.0.1:4570"})
    console.check_post(Headers(good, **{"X-CSRF-Token": token}), "session-1")  # passes
    for headers, session in [
        (good, "session-1"),  # no token
        (Headers(good, **{"X-CSRF-Token": token}), "session-2"),  # another session's
        (Headers(good, **{"X-CSRF-Token": token}), None),  # no session
        (Headers({"Host": "127.0.0.1:4570", "X-CSRF-Token": token}), "session-1"),  # no Origin
        (Headers(good, Origin="http://evil.example", **{"X-CSRF-Token": token}), "session-1"),
    ]:
        with pytest.raises(Forbidden):
            console.check_post(headers, session)
    with pytest.raises(Forbidden):
        console.check_host("attacker.example:4570")  # DNS rebinding


def test_the_server_listens_on_loopback_refuses_other_hosts_and_sends_a_strict_csp() -> None:
    with ConsoleServer(aws_deployment(None, None), port=0) as server:
        assert server.host == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url + "healthz") as answer:
            csp = answer.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "HttpOnly; SameSite=Strict" in answer.headers["Set-Cookie"]
        request = urllib.request.Request(server.url + "healthz", headers={"Host": "evil:80"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        assert refused.value.code == 403
        post = urllib.request.Request(server.url + "actions/requeue", data=b"key=x")
        with pytest.raises(urllib.error.HTTPError) as no_origin:
            urllib.request.urlopen(post)
        assert no_origin.value.code == 403


@pytest.mark.parametrize(
    ("body", "problem"), [(b"{", "must be JSON"), (b"[1]", "JSON object"), (b'"x"', "JSON object")]
)
def test_upload_requests_that_are_not_a_json_object_are_refused_clearly(
    body: bytes, problem: str
) -> None:
    # GIVEN a grant or completion request whose body is not a JSON object
    # WHEN the console reads it THEN a clear error (a 400), never a crash
    with pytest.raises(ConsoleError, match=problem):
        _json_object(body)
    assert _json_object(b'{"name": "a.csv"}') == {"name": "a.csv"}


# --- the vendored htmx ------------------------------------------------------------------------
def test_the_vendored_htmx_is_the_version_package_json_pins() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["htmx.org"]
    vendored = (ROOT / "chute" / "web" / "static" / "htmx.min.js").read_bytes()
    assert f'version:"{pinned}"'.encode() in vendored
    from_npm = ROOT / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"
    if from_npm.exists():  # `make install` runs npm ci
        assert from_npm.read_bytes() == vendored


def test_paging_through_many_executions_reads_only_the_rows_shown(s3: Any) -> None:
    # GIVEN 120 succeeded executions of 120 files on AWS, listed in two pages of ListExecutions
    sfn = boto3.client("stepfunctions", region_name=REGION)
    names = [f"ok-{i:03d}" for i in range(120)]
    items = [
        {
            "executionArn": arn(n),
            "stateMachineArn": MACHINE,
            "name": n,
            "status": "SUCCEEDED",
            "startDate": NOW - timedelta(seconds=i),
        }
        for i, n in enumerate(names)
    ]
    done = [entered(1, "ConvertInLambda"), exited(2, "ConvertInLambda")]
    data = ConsoleData(aws_deployment(sfn, s3))

    def listed(stub: Stubber) -> None:
        stub.add_response("list_executions", {"executions": items[:100], "nextToken": "t"})
        stub.add_response("list_executions", {"executions": items[100:]})

    def listed_reading_keys(stub: Stubber) -> None:  # each execution's file, once: files count
        for page, more in ((items[:100], {"nextToken": "t"}), (items[100:], {})):
            stub.add_response("list_executions", {"executions": page, **more})
            for item in page:
                n = item["name"]
                stub.add_response("describe_execution", describe(n, "SUCCEEDED", key=f"in/{n}.csv"))

    def shown(stub: Stubber, rows: list[str]) -> None:
        for n in rows:
            stub.add_response("describe_execution", describe(n, "SUCCEEDED", key=f"in/{n}.csv"))
            stub.add_response("get_execution_history", {"events": done})

    with Stubber(sfn) as stub:
        listed_reading_keys(stub)
        shown(stub, names[50:100])
        # WHEN page 2 of 50 rows is read
        listing = data.listing(Filters(), page=2, per_page=50)
        stub.assert_no_pending_responses()
    # THEN it holds rows 51-100, newest first, of 3 pages, with the counts of all 120
    assert (listing.page, listing.pages, listing.total) == (2, 3, 120)
    assert [r.execution for r in listing.rows] == names[50:100]
    assert listing.counts["succeeded"] == 120
    # AND page 3 reads its own 20 rows; page 2 again costs only the listing (keys and views are
    # kept)
    with Stubber(sfn) as stub:
        listed(stub)
        shown(stub, names[100:])
        assert [r.execution for r in data.listing(Filters(), page=3).rows] == names[100:]
        listed(stub)
        assert len(data.listing(Filters(), page=2).rows) == 50
        stub.assert_no_pending_responses()


def test_chute_console_says_when_the_deployment_cannot_be_reached() -> None:
    from typer.testing import CliRunner

    from chute.cli import app
    from chute.local.embedded import free_port

    result = CliRunner().invoke(
        app, ["console", "--endpoint-url", f"http://127.0.0.1:{free_port()}", "--port", "0"]
    )
    assert result.exit_code == 2
    assert "cannot reach" in result.output


def test_large_uploads_get_one_presigned_url_per_part_and_only_console_keys_complete(
    s3: Any,
) -> None:
    # GIVEN the console over AWS, uploads of 20 MiB and more in 8 MiB parts
    data = ConsoleData(aws_deployment(None, s3))
    data.multipart_threshold, data.part_size = 20 * 2**20, 8 * 2**20
    # WHEN a 20 MiB file and a small one ask for grants
    large = data.upload_grant("big.csv", 20 * 2**20, None)
    small = data.upload_grant("small.csv", 100, None)
    # THEN the large one is a multipart upload the console started, a URL per part
    assert large["kind"] == "multipart" and large["key"].startswith("console/big_")
    assert [p["number"] for p in large["parts"]] == [1, 2, 3]
    assert all("partNumber=" in p["url"] and "uploadId=" in p["url"] for p in large["parts"])
    assert small["kind"] == "put" and small["method"] == "PUT"
    # AND only the console's own uploads complete, and only with parts in S3
    with pytest.raises(ConsoleError, match="console's own"):
        data.complete("partners/x.csv", large["uploadId"])
    with pytest.raises(ConsoleError, match="no part"):
        data.complete(large["key"], large["uploadId"])
    # AND what the pipeline would refuse is refused before any byte is sent
    with pytest.raises(ConsoleError, match="not processed"):
        data.upload_grant("notes.exe", 100, None)


def test_local_glance_counts_the_window_from_the_executions_reading_only_what_it_needs(
    s3: Any,
) -> None:
    # GIVEN an embedded deployment: a file converted 2 minutes ago, one 2 hours ago, a failure
    sfn = boto3.client("stepfunctions", region_name=REGION)
    d = aws_deployment(sfn, s3)
    d.on_aws = False
    now = NOW + timedelta(hours=3)

    def item(name: str, status: str, stopped: datetime) -> dict[str, Any]:
        return {
            "executionArn": arn(name),
            "stateMachineArn": MACHINE,
            "name": name,
            "status": status,
            "startDate": stopped - timedelta(seconds=5),
            "stopDate": stopped,
        }

    recent = dict(describe("recent", "SUCCEEDED"), stopDate=now - timedelta(minutes=2))
    converted = [entered(1, "ConvertInLambda"), exited(2, "ConvertInLambda")]
    with Stubber(sfn) as stub:
        stub.add_response(
            "list_executions",
            {
                "executions": [
                    item("recent", "SUCCEEDED", now - timedelta(minutes=2)),
                    item("bad", "FAILED", now - timedelta(minutes=50)),
                    item("old", "SUCCEEDED", now - timedelta(hours=2)),
                ]
            },
        )
        stub.add_response("describe_execution", recent)
        stub.add_response("get_execution_history", {"events": converted})
        stub.add_response("describe_execution", describe("bad", "FAILED", "MalformedContent"))
        stub.add_response("get_execution_history", {"events": QUARANTINED_HISTORY})
        # WHEN the glance is read (the old success is not read: it is outside the window)
        glance = ConsoleData(d).glance(hours=3, minutes=30, now=now)
        stub.assert_no_pending_responses()
    # THEN the recent file counts in its minute by route, the failure by its error name
    assert glance.source == "executions"
    assert glance.files["lambda"][-3] == 1 and sum(glance.files["lambda"]) == 1
    assert glance.bytes["lambda"][-3] == len(BAD_CSV)
    assert glance.failures == {"MalformedContent": 1}


def test_the_preview_of_an_empty_file_says_it_is_empty(s3: Any) -> None:
    # GIVEN an empty file in quarantine (a 0-byte upload)
    s3.put_object(Bucket=QUARANTINE, Key="in/empty.csv", Body=b"")
    # WHEN the console previews it THEN it says so in words, not with S3's error name
    rows, note = S3Links(aws_deployment(None, s3)).preview(QUARANTINE, "in/empty.csv")
    assert rows == [] and note == "no preview: the file is empty (0 bytes)"
