"""Upload grants end to end against `chute up`: a tenant user signs in to the user pool, asks
the grant API (the twin of the stack's HTTP API + JWT authorizer) for a grant, and a real HTTP
client (curl) uploads with it; the file goes through the pipeline.

The embedded engine checks neither S3 signatures, expiry, POST policies nor session policies:
those are asserted on the documents themselves in tests/unit/test_grant.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig

from tests.e2e.test_cli_ops import chute, finished
from tests.support.up import Up

PASSWORD = "Correct-horse-9!"


def cognito(endpoint: str) -> Any:
    return boto3.client(
        "cognito-idp",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="chute",
        aws_secret_access_key="chute",
    )


def sign_in(endpoint: str, user: str, tenant: str | None) -> str:
    """An operator creates the user (as on AWS, `aws cognito-idp admin-create-user`), the
    client signs in with USER_PASSWORD_AUTH and sends the ID token."""
    idp = cognito(endpoint)
    pool = idp.list_user_pools(MaxResults=10)["UserPools"][0]["Id"]
    client = idp.list_user_pool_clients(UserPoolId=pool, MaxResults=10)["UserPoolClients"][0]
    attributes = [{"Name": "custom:tenant", "Value": tenant}] if tenant else []
    idp.admin_create_user(
        UserPoolId=pool, Username=user, UserAttributes=attributes, MessageAction="SUPPRESS"
    )
    idp.admin_set_user_password(UserPoolId=pool, Username=user, Password=PASSWORD, Permanent=True)
    result = idp.initiate_auth(
        ClientId=client["ClientId"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user, "PASSWORD": PASSWORD},
    )
    return str(result["AuthenticationResult"]["IdToken"])


@pytest.fixture(scope="module")
def token(up: Up) -> str:
    return sign_in(up.endpoint, "partner-acme", "acme")


def curl(*args: str) -> tuple[int, str]:
    """curl's HTTP status and body."""
    result = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    body, _, code = result.stdout.rpartition("\n")
    return int(code), body


def ask(up: Up, token: str | None, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    auth = ["-H", f"Authorization: Bearer {token}"] if token is not None else []
    code, body = curl("-X", "POST", *auth, "--data", json.dumps(request), up.grant_url)
    return code, json.loads(body)


def test_curl_uploads_with_a_put_and_a_post_from_the_grant_api(
    up: Up, token: str, tmp_path: Path
) -> None:
    path = tmp_path / "partner.csv"
    path.write_bytes(b"id,name\n1,Ann\n")
    # a presigned PUT, bound to the content type; the tenant comes from the token
    code, put = ask(up, token, {"name": "partner.csv", "kind": "put", "size": path.stat().st_size})
    assert code == 200, put
    assert put["key"].startswith("acme/partner_") and put["key"].endswith(".csv")
    header = f"Content-Type: {put['headers']['Content-Type']}"
    code, _ = curl("-X", "PUT", "-H", header, "--data-binary", f"@{path}", put["url"])
    assert code == 200
    # a presigned POST: key, content type and size range fixed by its policy
    code, post = ask(
        up, token, {"name": "partner.csv", "kind": "post", "size": path.stat().st_size}
    )
    assert code == 200, post
    form = [arg for k, v in post["fields"].items() for arg in ("-F", f"{k}={v}")]
    code, _ = curl(*form, "-F", f"file=@{path}", post["url"])
    assert code in (200, 204)
    # THEN both files go through the pipeline
    for key in (put["key"], post["key"]):
        assert finished(up.endpoint, key)["outcome"] == "SUCCEEDED"


def test_the_grant_api_refuses_clearly(up: Up, token: str) -> None:
    # no token, or a tampered one: the authorizer answers, the function never runs
    assert ask(up, None, {"name": "a.csv"})[0] == 401
    head, payload, signature = token.split(".")
    assert ask(up, f"{head}.{payload}.{signature[::-1]}", {"name": "a.csv"})[0] == 401
    # a user without a tenant
    code, document = ask(up, sign_in(up.endpoint, "no-tenant", None), {"name": "a.csv"})
    assert code == 403 and "custom:tenant" in document["error"]
    # what the pipeline would reject anyway
    code, document = ask(up, token, {"name": "setup.exe"})
    assert code == 400 and "not processed" in document["error"]
    code, document = ask(up, token, {"name": "a.csv", "tenant": "someone-else"})
    assert code == 400 and "unknown field" in document["error"]


def test_chute_grant_credentials_carry_a_multipart_upload(up: Up, tmp_path: Path) -> None:
    result = chute(
        "grant", "big.csv", "--tenant", "acme", "--credentials", "--endpoint-url", up.endpoint
    )
    assert result.returncode == 0, result.stderr
    grant = json.loads(result.stdout)
    assert grant["kind"] == "credentials" and grant["key"].startswith("acme/big_")
    path = tmp_path / "big.csv"
    with path.open("w") as out:
        out.write("id,name\n")
        out.writelines(f"{i},name-{i}\n" for i in range(700_000))  # ~12 MB: 3 parts
    s3 = boto3.client(
        "s3",
        endpoint_url=up.endpoint,
        region_name=grant["region"],
        aws_access_key_id=grant["accessKeyId"],
        aws_secret_access_key=grant["secretAccessKey"],
        aws_session_token=grant["sessionToken"],
    )
    five_mib = 5 * 1024 * 1024
    config = TransferConfig(multipart_threshold=five_mib, multipart_chunksize=five_mib)
    s3.upload_file(str(path), grant["bucket"], grant["key"], Config=config)
    assert s3.head_object(Bucket=grant["bucket"], Key=grant["key"])["ETag"].endswith('-3"')
    assert finished(up.endpoint, grant["key"])["outcome"] == "SUCCEEDED"
