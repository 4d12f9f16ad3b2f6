"""Signing for upload grants: presigned S3 requests and STS role sessions, made with the
caller's (the grant service's) own credentials."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config


class AwsSigner:
    def __init__(
        self,
        region: str | None = None,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self._session = session or boto3.Session(region_name=region)
        self.region = str(self._session.region_name or "us-east-1")
        where = {"endpoint_url": endpoint_url} if endpoint_url else {}
        # SigV4 always: its signatures carry the expiry and the signed headers S3 checks.
        # Virtual-hosted on the regional endpoint: the global one answers with a redirect for a
        # new bucket outside us-east-1, which breaks signed browser uploads. (A custom endpoint,
        # like the embedded runtime's 127.0.0.1, falls back to path style by itself.)
        config = Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
        self._s3 = self._session.client("s3", region_name=self.region, config=config, **where)
        self._sts = self._session.client("sts", region_name=self.region, **where)

    def presign_put(
        self,
        bucket: str,
        key: str,
        content_type: str,
        expires: int,
        content_length: int | None = None,
    ) -> str:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key, "ContentType": content_type}
        if content_length is not None:
            params["ContentLength"] = content_length  # signed: S3 refuses any other size
        return str(self._s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires))

    def presign_post(
        self,
        bucket: str,
        key: str,
        fields: dict[str, str],
        conditions: list[Any],
        expires: int,
    ) -> dict[str, Any]:
        post = self._s3.generate_presigned_post(
            Bucket=bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires
        )
        return {"url": post["url"], "fields": dict(post["fields"])}

    def assume_role(
        self, role_arn: str, session_name: str, policy: dict[str, Any], seconds: int
    ) -> dict[str, str]:
        response = self._sts.assume_role(
            RoleArn=role_arn,
            RoleSessionName=session_name,
            Policy=json.dumps(policy),
            DurationSeconds=seconds,
        )
        credentials = response["Credentials"]
        return {
            "accessKeyId": credentials["AccessKeyId"],
            "secretAccessKey": credentials["SecretAccessKey"],
            "sessionToken": credentials["SessionToken"],
            "expiration": credentials["Expiration"].isoformat(),
        }
