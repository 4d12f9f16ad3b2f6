"""The fault rule syntax (chute.local.faults): what operators write, and the clear errors they
get."""

from __future__ import annotations

import signal

import pytest

from chute.local import faults
from chute.local.faults import (
    BatchExit,
    Faults,
    FaultSpecError,
    ProcessSignal,
    S3Fault,
    StepError,
    batch_access_key,
    parse,
)


def test_every_kind_of_rule_parses_with_its_defaults() -> None:
    rules = parse(
        "s3:GetObject:503:3, s3:*:InternalError:1:in/a:b,lambda:convert:kill,"
        "lambda:validate:error=StorageUnavailable:2,batch:kill,batch:term:2:PutObject,"
        "batch:exit=75:3"
    )
    assert [type(r) for r in rules] == [
        S3Fault,
        S3Fault,
        ProcessSignal,
        StepError,
        ProcessSignal,
        ProcessSignal,
        BatchExit,
    ]
    get, anything, kill, error, batch_kill, term, exit_ = rules
    assert (get.operation, get.status, get.code, get.remaining, get.prefix) == (
        "GetObject",
        503,
        "SlowDown",
        3,
        "",
    )
    assert (anything.operation, anything.status, anything.prefix) == ("*", 500, "in/a:b")
    assert isinstance(kill, ProcessSignal)
    assert (kill.step, kill.signum, kill.remaining, kill.operation) == (
        "convert",
        signal.SIGKILL,
        1,
        "*",
    )
    assert isinstance(error, StepError)
    assert (error.step, error.error, error.remaining) == ("validate", "StorageUnavailable", 2)
    assert isinstance(batch_kill, ProcessSignal)
    assert (batch_kill.step, batch_kill.operation) == (None, "UploadPart")
    assert isinstance(term, ProcessSignal)
    assert (term.signum, term.remaining, term.operation) == (signal.SIGTERM, 2, "PutObject")
    assert isinstance(exit_, BatchExit)
    assert (exit_.exit_code, exit_.remaining) == (75, 3)


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("dynamodb:GetItem:503", "unknown target 'dynamodb'"),
        ("s3:GetObject", "expected s3:OPERATION:STATUS"),
        ("s3:GetObjekt:503", "unknown S3 operation 'GetObjekt'"),
        ("s3:GetObject:404", "STATUS must be 503 (SlowDown) or 500 (InternalError)"),
        ("s3:GetObject:503:0", "COUNT must be a positive integer, not '0'"),
        ("s3:GetObject:503:many", "COUNT must be a positive integer"),
        ("lambda:resize:kill", "STEP one of validate, convert"),
        ("lambda:convert:explode", "unknown Lambda fault 'explode'"),
        ("lambda:convert:kill:1:Get", "unknown S3 operation 'Get'"),
        ("lambda:convert:kill:1:GetObject:extra", "too many fields"),
        ("lambda:convert:error=", "is not an error name"),
        ("lambda:convert:error=Bad Name", "is not an error name"),
        ("batch:exit=0", "CODE must be 1..255"),
        ("batch:exit=300", "CODE must be 1..255"),
        ("batch:stop", "unknown Batch fault 'stop'"),
        ("batch:kill:1:UploadPart:x", "too many fields"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_rule_and_the_problem(rule: str, says: str) -> None:
    with pytest.raises(FaultSpecError) as error:
        parse(f"s3:GetObject:503,{rule}")
    assert says in str(error.value)
    assert repr(rule) in str(error.value) or rule.split(":")[0] in str(error.value)


def test_nothing_is_armed_when_one_rule_is_bad() -> None:
    armed = Faults()
    with pytest.raises(FaultSpecError):
        armed.add("s3:GetObject:503,s3:Nope:503")
    assert armed.armed() == []


@pytest.mark.parametrize(
    ("method", "path", "query", "copy", "operation"),
    [
        ("GET", "/b/k/x.csv", "", False, "GetObject"),
        ("GET", "/b/k/x.csv", "versionId=3", False, "GetObject"),
        ("HEAD", "/b/k/x.csv", "", False, "HeadObject"),
        ("PUT", "/b/k", "", False, "PutObject"),
        ("PUT", "/b/k", "", True, "CopyObject"),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", False, "UploadPart"),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", True, "UploadPartCopy"),
        ("POST", "/b/k", "uploads", False, "CreateMultipartUpload"),
        ("POST", "/b/k", "uploadId=u", False, "CompleteMultipartUpload"),
        ("DELETE", "/b/k", "uploadId=u", False, "AbortMultipartUpload"),
        ("DELETE", "/b/k", "", False, "DeleteObject"),
        ("GET", "/b/k", "uploadId=u", False, "ListParts"),
        ("GET", "/b", "list-type=2&prefix=a", False, "ListObjectsV2"),
        ("GET", "/b", "uploads", False, "ListMultipartUploads"),
        ("GET", "/b", "versions", False, "ListObjectVersions"),
        ("POST", "/b", "delete", False, "DeleteObjects"),
        ("HEAD", "/b", "", False, "HeadBucket"),
        ("GET", "/", "", False, "ListBuckets"),
        ("GET", "/b/k", "acl", False, "Other"),
    ],
)
def test_requests_are_told_apart_by_operation(
    method: str, path: str, query: str, copy: bool, operation: str
) -> None:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    if copy:
        environ["HTTP_X_AMZ_COPY_SOURCE"] = "/src/key"
    assert faults.s3_operation(environ)[0] == operation


def _signed(key: str, service: str = "s3", **extra: str) -> dict[str, str]:
    return {
        "HTTP_AUTHORIZATION": (
            f"AWS4-HMAC-SHA256 Credential={key}/20261203/us-east-1/{service}/aws4_request, "
            "SignedHeaders=host, Signature=abc"
        ),
        **extra,
    }


def test_an_s3_rule_answers_matching_requests_count_times_with_s3s_error() -> None:
    armed = Faults()
    armed.add("s3:GetObject:503:2:in/")
    get = _signed("me", REQUEST_METHOD="GET", PATH_INFO="/b/in/x.csv")
    other_key = _signed("me", REQUEST_METHOD="GET", PATH_INFO="/b/out/x.csv")
    other_service = _signed("me", "sqs", REQUEST_METHOD="GET", PATH_INFO="/b/in/x.csv")
    assert armed.wsgi_filter(other_key) is None
    assert armed.wsgi_filter(other_service) is None
    answer = armed.wsgi_filter(get)
    assert answer is not None
    status, headers, body = answer
    assert status == "503 Slow Down"
    assert b"<Code>SlowDown</Code>" in body and b"<Resource>/b/in/x.csv</Resource>" in body
    assert ("Content-Length", str(len(body))) in headers
    assert armed.wsgi_filter(get) is not None
    assert armed.wsgi_filter(get) is None  # used up
    assert len(armed.fired("s3:GetObject:503:2:in/:")) == 2


def test_a_signal_rule_fires_on_its_callers_request_and_waits_while_nothing_runs() -> None:
    sent: list[tuple[str | None, int, str | None]] = []
    running = {"pid": None}

    def signal_process(function: str | None, signum: int, job: str | None) -> int | None:
        if running["pid"] is None:
            return None
        sent.append((function, signum, job))
        return running["pid"]

    armed = Faults(function_name=lambda step: f"chute-{step}", signal_process=signal_process)
    armed.add("lambda:convert:kill,batch:term")
    part = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/b/k", "QUERY_STRING": "partNumber=1&uploadId=u"}
    # a request by another function, or while nothing runs, fires nothing
    assert armed.wsgi_filter(_signed("chute-validate", **part)) is None
    assert armed.wsgi_filter(_signed("chute-convert", **part)) is None
    assert sent == [] and len(armed.armed()) == 2
    running["pid"] = 42
    armed.wsgi_filter(_signed("chute-convert", **part))
    armed.wsgi_filter(_signed(batch_access_key("job-7"), **part))
    # the job whose request fired the rule is the one signalled (other jobs may be running)
    assert sent == [("chute-convert", signal.SIGKILL, None), (None, signal.SIGTERM, "job-7")]
    assert armed.armed() == []
