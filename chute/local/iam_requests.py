"""What AWS authorizes for one API call: the IAM action(s) and resource ARN(s) of the calls
chute's handlers and Batch job make (the service authorization reference's tables for S3, Step
Functions, STS, SQS, EventBridge and Lambda). Anything else is ``<service>:<Operation>`` on
``*``: still evaluated, so a call no statement allows is refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlparse

Authorization = tuple[str, str]  # (action, resource ARN)

_S3_OBJECT_WRITE = {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}
_S3_VERSIONED = {"GetObject", "HeadObject", "DeleteObject", "GetObjectTagging", "PutObjectTagging"}
_S3_READ = {"GetObject": "GetObject", "HeadObject": "GetObject"}
_S3_BUCKET = {
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}
_S3_OTHER = {
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
}
_SFN_MACHINE = {"StartExecution", "ListExecutions", "DescribeStateMachine", "StartSyncExecution"}
_SFN_EXECUTION = {"DescribeExecution", "GetExecutionHistory", "StopExecution", "RedriveExecution"}
_PREFIX = {"stepfunctions": "states", "s3": "s3", "sts": "sts", "sqs": "sqs", "events": "events"}


def _object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _copy_source(source: Any) -> Authorization:
    if isinstance(source, Mapping):
        bucket, key, version = source["Bucket"], source["Key"], source.get("VersionId")
    else:
        path, _, query = str(source).lstrip("/").partition("?versionId=")
        bucket, _, key = unquote(path).partition("/")
        version = query or None
    action = "s3:GetObjectVersion" if version else "s3:GetObject"
    return action, _object_arn(bucket, key)


def s3(operation: str, params: Mapping[str, Any]) -> list[Authorization]:
    bucket = str(params.get("Bucket", ""))
    key = str(params.get("Key", ""))
    if operation in _S3_BUCKET:
        return [(_S3_BUCKET[operation], f"arn:aws:s3:::{bucket}")]
    if operation in ("CopyObject", "UploadPartCopy"):
        return [("s3:PutObject", _object_arn(bucket, key)), _copy_source(params["CopySource"])]
    if operation in _S3_OBJECT_WRITE:
        return [("s3:PutObject", _object_arn(bucket, key))]
    if operation == "DeleteObjects":
        objects = params.get("Delete", {}).get("Objects", [])
        return [
            (
                "s3:DeleteObjectVersion" if o.get("VersionId") else "s3:DeleteObject",
                _object_arn(bucket, str(o["Key"])),
            )
            for o in objects
        ]
    if operation in _S3_OTHER:
        return [(_S3_OTHER[operation], _object_arn(bucket, key))]
    name = _S3_READ.get(operation, operation)
    if operation in _S3_VERSIONED and params.get("VersionId"):
        name += "Version"
    return [(f"s3:{name}", _object_arn(bucket, key) if key else f"arn:aws:s3:::{bucket}")]


def _queue_arn(url: str, region: str) -> str:
    parts = [p for p in urlparse(url).path.split("/") if p]
    account, name = [*parts, "", ""][:2]
    return f"arn:aws:sqs:{region}:{account}:{name}"


def authorizations(
    service: str, operation: str, params: Mapping[str, Any], *, region: str, account: str
) -> list[Authorization]:
    """What AWS authorizes for ``operation`` of ``service`` (botocore's service name)."""
    if service == "s3":
        return s3(operation, params)
    prefix = _PREFIX.get(service, service)
    action = f"{prefix}:{operation}"
    if service == "stepfunctions" and operation in _SFN_MACHINE:
        return [(action, str(params.get("stateMachineArn", "*")))]
    if service == "stepfunctions" and operation in _SFN_EXECUTION:
        return [(action, str(params.get("executionArn", "*")))]
    if service == "sts" and operation == "GetCallerIdentity":
        return []  # needs no permission
    if service == "sts" and "RoleArn" in params:
        return [(action, str(params["RoleArn"]))]
    if service == "sqs" and "QueueUrl" in params:
        return [(action, _queue_arn(str(params["QueueUrl"]), region))]
    if service == "events" and operation == "PutEvents":
        buses = {str(e.get("EventBusName") or "default") for e in params.get("Entries", [])}
        return [
            (
                action,
                b if b.startswith("arn:") else f"arn:aws:events:{region}:{account}:event-bus/{b}",
            )
            for b in sorted(buses)
        ]
    if service == "lambda" and "FunctionName" in params:
        name = str(params["FunctionName"])
        arn = (
            name
            if name.startswith("arn:")
            else f"arn:aws:lambda:{region}:{account}:function:{name}"
        )
        return [("lambda:InvokeFunction" if operation == "Invoke" else f"lambda:{operation}", arn)]
    return [(action, "*")]
