"""Narrow S3 permissions, spelled out: the exact object actions each principal uses.

(`bucket.grant_read` & co. would add `s3:GetBucket*`, `s3:List*`, `s3:GetObject*`, `s3:Abort*`,
`s3:DeleteObject*`; chute's tasks need a handful of actions.) ListBucket on the bucket itself
comes with every grant that reads objects: without it S3 answers 403 instead of 404 for a
missing key, and the tasks tell "already processed" or "nothing published yet" (404) from "not
allowed" (403).
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

# GET/HEAD of an object, also of a given version (a staged upload is read by its version id).
READ = ("s3:GetObject", "s3:GetObjectVersion")
# GET/HEAD of the current object only: what a conditional write (If-None-Match/If-Match) is
# checked against, and what a conditional DeleteObject (If-Match) needs besides DeleteObject.
CHECK = ("s3:GetObject",)
# PutObject also covers Create/UploadPart/UploadPartCopy/CompleteMultipartUpload.
WRITE = ("s3:PutObject", "s3:AbortMultipartUpload")
# A multipart copy that lists the parts it already finished (a retried move doesn't redo them).
LIST_PARTS = ("s3:ListMultipartUploadParts",)
DELETE = ("s3:DeleteObject", "s3:DeleteObjectVersion")
# Delete the current object (in an unversioned bucket: the object itself).
DELETE_CURRENT = ("s3:DeleteObject",)


def allow_objects(
    grantee: iam.IGrantable | iam.ManagedPolicy,
    bucket: s3.IBucket,
    *actions: tuple[str, ...],
    keys: str = "*",
) -> None:
    """``actions`` on the bucket's objects whose keys match ``keys`` (plus ListBucket on the
    bucket when reading)."""
    object_actions = list(dict.fromkeys(a for group in actions for a in group))
    statements = [
        iam.PolicyStatement(actions=object_actions, resources=[bucket.arn_for_objects(keys)])
    ]
    if "s3:GetObject" in object_actions:
        statements.append(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        )
    for statement in statements:
        if isinstance(grantee, iam.ManagedPolicy):
            grantee.add_statements(statement)
        else:
            grantee.grant_principal.add_to_principal_policy(statement)
