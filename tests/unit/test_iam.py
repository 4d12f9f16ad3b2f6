"""chute.local.iam: the evaluator's semantics (AWS's documented logic for an identity policy),
what each call is authorized as, and the refusal as AWS answers it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto import mock_aws

from chute.local import iam
from chute.local.iam_requests import authorizations
from chute.ops.resources import Resources

BUCKET = "arn:aws:s3:::bkt"


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_nothing_allowed_is_an_implicit_deny() -> None:
    assert iam.evaluate([], "s3:GetObject", f"{BUCKET}/k") == "ImplicitDeny"


def test_an_explicit_deny_wins_over_any_allow() -> None:
    statements = [allow("s3:*"), {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]
    assert iam.evaluate(statements, "s3:GetObject", f"{BUCKET}/k") == "ExplicitDeny"
    assert iam.evaluate(statements, "s3:PutObject", f"{BUCKET}/k") == "Allow"


@pytest.mark.parametrize(
    ("action", "resource", "decision"),
    [
        ("s3:GetObject", f"{BUCKET}/a/b.csv", "Allow"),
        ("S3:getobject", f"{BUCKET}/a/b.csv", "Allow"),  # actions: case-insensitive
        ("s3:GetObjectVersion", f"{BUCKET}/x", "Allow"),  # Get* wildcard
        ("s3:PutObject", f"{BUCKET}/x", "ImplicitDeny"),
        ("s3:GetObject", "arn:aws:s3:::BKT/x", "ImplicitDeny"),  # resources: case-sensitive
        ("s3:GetObject", "arn:aws:s3:::bkt2/x", "ImplicitDeny"),
        ("s3:GetObject", "arn:aws:s3:::bkt", "ImplicitDeny"),  # the bucket is not b/*
    ],
)
def test_wildcards_in_actions_and_resources(action: str, resource: str, decision: str) -> None:
    assert iam.evaluate([allow("s3:Get*", f"{BUCKET}/*")], action, resource) == decision


def test_not_action_and_not_resource() -> None:
    statements = [{"Effect": "Allow", "NotAction": "s3:Delete*", "NotResource": f"{BUCKET}/x"}]
    assert iam.evaluate(statements, "s3:GetObject", f"{BUCKET}/y") == "Allow"
    assert iam.evaluate(statements, "s3:DeleteObject", f"{BUCKET}/y") == "ImplicitDeny"
    assert iam.evaluate(statements, "s3:GetObject", f"{BUCKET}/x") == "ImplicitDeny"


@pytest.mark.parametrize(
    ("condition", "context", "decision"),
    [
        ({"StringEquals": {"s3:prefix": "in/"}}, {"s3:prefix": "in/"}, "Allow"),
        ({"StringEquals": {"s3:prefix": "in/"}}, {"s3:prefix": "out/"}, "ImplicitDeny"),
        ({"StringLike": {"s3:prefix": "in/*"}}, {"s3:prefix": "in/a"}, "Allow"),
        ({"StringNotEquals": {"s3:prefix": "in/"}}, {"s3:prefix": "out/"}, "Allow"),
        (
            {"Bool": {"aws:SecureTransport": "true"}},
            {"aws:SecureTransport": "false"},
            "ImplicitDeny",
        ),
        ({"StringEqualsIfExists": {"s3:prefix": "in/"}}, {}, "Allow"),
        ({"StringEquals": {"s3:prefix": "in/"}}, {}, "ImplicitDeny"),
        ({"Null": {"s3:prefix": "true"}}, {}, "Allow"),
        ({"NumericLessThan": {"s3:max-keys": "10"}}, {"s3:max-keys": "5"}, "ImplicitDeny"),
    ],
)
def test_conditions(condition: Any, context: Any, decision: str) -> None:
    statements = [allow("s3:ListBucket", BUCKET, Condition=condition)]
    assert iam.evaluate(statements, "s3:ListBucket", BUCKET, context) == decision


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        ("s3", "HeadObject", {"Bucket": "b", "Key": "k"}, [("s3:GetObject", "arn:aws:s3:::b/k")]),
        (
            "s3",
            "GetObject",
            {"Bucket": "b", "Key": "k", "VersionId": "v"},
            [("s3:GetObjectVersion", "arn:aws:s3:::b/k")],
        ),
        (
            "s3",
            "UploadPartCopy",
            {
                "Bucket": "d",
                "Key": "k",
                "CopySource": {"Bucket": "s", "Key": "a b", "VersionId": "1"},
            },
            [("s3:PutObject", "arn:aws:s3:::d/k"), ("s3:GetObjectVersion", "arn:aws:s3:::s/a b")],
        ),
        (
            "s3",
            "CopyObject",
            {"Bucket": "d", "Key": "k", "CopySource": "s/a%20b"},
            [("s3:PutObject", "arn:aws:s3:::d/k"), ("s3:GetObject", "arn:aws:s3:::s/a b")],
        ),
        ("s3", "ListObjectsV2", {"Bucket": "b"}, [("s3:ListBucket", "arn:aws:s3:::b")]),
        (
            "s3",
            "DeleteObject",
            {"Bucket": "b", "Key": "k", "VersionId": "v"},
            [("s3:DeleteObjectVersion", "arn:aws:s3:::b/k")],
        ),
        (
            "stepfunctions",
            "StartExecution",
            {"stateMachineArn": "arn:m"},
            [("states:StartExecution", "arn:m")],
        ),
        ("sts", "AssumeRole", {"RoleArn": "arn:r"}, [("sts:AssumeRole", "arn:r")]),
        ("sts", "GetCallerIdentity", {}, []),
        (
            "events",
            "PutEvents",
            {"Entries": [{"EventBusName": "bus"}]},
            [("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/bus")],
        ),
    ],
)
def test_what_each_call_is_authorized_as(
    service: str, operation: str, params: Any, expected: Any
) -> None:
    found = authorizations(service, operation, params, region="us-east-1", account="123456789012")
    assert found == expected


def test_the_shipped_policies_resolve_to_the_local_stack() -> None:
    policies = iam.load_policies(iam.local_values(Resources(prefix="chute", region="us-east-1")))
    assert set(policies) >= {"validate", "convert", "archive", "quarantine", "trigger", "batch"}
    archive = policies["archive"]
    assert iam.evaluate(archive, "s3:PutObject", "arn:aws:s3:::chute-archive/x.csv") == "Allow"
    assert iam.evaluate(archive, "s3:PutObject", "arn:aws:s3:::chute-output/x") == "ImplicitDeny"
    trigger = policies["trigger"]
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:chute-pipeline"
    assert iam.evaluate(trigger, "states:StartExecution", machine) == "Allow"
    assert "${" not in json.dumps(policies["convert"]).replace("${unresolved:", "")


def test_the_fanout_function_may_write_under_its_prefix_and_the_output_keys_only() -> None:
    fanout = iam.load_policies(iam.local_values(Resources(prefix="chute", region="us-east-1")))[
        "fanout"
    ]
    out = "arn:aws:s3:::chute-output"
    for key in (
        "_chute/fanout/ex/r0/00001.parquet",
        "_chute/fanout/ex/outcome.json",
        "in/x.csv.jsonl",
        "in/x.csv.parquet",
        "in/x.csv.rejected.jsonl",
    ):
        assert iam.evaluate(fanout, "s3:PutObject", f"{out}/{key}") == "Allow", key
    for key in ("in/x.csv", "_chute/batch-failures/ex.json", "other/report.json"):
        assert iam.evaluate(fanout, "s3:PutObject", f"{out}/{key}") == "ImplicitDeny", key
        assert iam.evaluate(fanout, "s3:DeleteObject", f"{out}/{key}") == "ImplicitDeny", key
    assert iam.evaluate(fanout, "s3:GetObject", "arn:aws:s3:::chute-staging/in/x.csv") == "Allow"
    assert iam.evaluate(fanout, "s3:PutObject", "arn:aws:s3:::chute-staging/x") == "ImplicitDeny"


@mock_aws
def test_a_call_the_policy_does_not_allow_fails_as_on_aws(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a process enforcing a policy that allows reading one bucket only
    monkeypatch.setattr(BaseClient, "_make_api_call", BaseClient._make_api_call)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    principal = "arn:aws:sts::123456789012:assumed-role/chute-validate/local"
    iam.write_policy(tmp_path, "validate", [allow("s3:GetObject", f"{BUCKET}/*")])
    env = iam.process_environment(tmp_path, "validate", "123456789012")
    assert env[iam.ENV_PRINCIPAL] == principal
    assert iam.install_from_environment(env)
    # THEN what it allows works and anything else is AccessDenied (403), before any request
    assert s3.get_object(Bucket="bkt", Key="k")["Body"].read() == b"x"
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket="bkt", Key="k", Body=b"y")
    error = denied.value.response
    assert error["Error"]["Code"] == "AccessDenied"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert (
        f"User: {principal} is not authorized to perform: s3:PutObject" in error["Error"]["Message"]
    )
    with pytest.raises(ClientError) as head:
        s3.head_object(Bucket="bkt", Key="other")  # allowed: s3:GetObject
    assert head.value.response["Error"]["Code"] == "404"
    with pytest.raises(ClientError) as bare:
        s3.head_bucket(Bucket="bkt")  # s3:ListBucket: not allowed, and HEAD has no body
    assert bare.value.response["Error"] == {"Code": "403", "Message": "Forbidden"}
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    with pytest.raises(ClientError) as refused:
        sfn.list_state_machines()
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    # AND a new policy applies from the next call on (what tests narrowing a role use)
    iam.write_policy(tmp_path, "validate", [allow("s3:*", f"{BUCKET}*")])
    s3.put_object(Bucket="bkt", Key="k", Body=b"y")


def test_it_can_be_turned_off() -> None:
    assert iam.enabled({}) is True
    assert iam.enabled({iam.ENV_SWITCH: "0"}) is False
    assert iam.install_from_environment({iam.ENV_SWITCH: "off", iam.ENV_POLICY: "p"}) is False
    assert iam.process_environment(None, "validate", "123456789012") == {}
