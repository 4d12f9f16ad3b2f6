"""Narrow S3 permissions, spelled out: the exact object actions each principal uses.

(`bucket.grant_read` & co. would add `s3:GetBucket*`, `s3:List*`, `s3:GetObject*`, `s3:Abort*`,
`s3:DeleteObject*`; chute's tasks need a handful of actions.) ListBucket on the bucket itself
is included with reads: without it S3 answers 403 instead of 404 for a missing key, and the
tasks tell "already processed" (404) from "not allowed" (403).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

READ = ("s3:GetObject", "s3:GetObjectVersion")
WRITE = ("s3:PutObject", "s3:AbortMultipartUpload")
DELETE = ("s3:DeleteObject", "s3:DeleteObjectVersion")


def allow_objects(
    grantee: iam.IGrantable | iam.ManagedPolicy,
    bucket: s3.IBucket,
    *actions: tuple[str, ...],
    keys: str = "*",
) -> None:
    """``actions`` on the bucket's objects whose keys match ``keys`` (plus ListBucket on the
    bucket when reading)."""
    statements = [
        iam.PolicyStatement(
            actions=[a for group in actions for a in group],
            resources=[bucket.arn_for_objects(keys)],
        )
    ]
    if READ in actions:
        statements.append(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        )
    for statement in statements:
        if isinstance(grantee, iam.ManagedPolicy):
            grantee.add_statements(statement)
        else:
            grantee.grant_principal.add_to_principal_policy(statement)
