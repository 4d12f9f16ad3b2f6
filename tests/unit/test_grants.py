"""Upload grants: server-chosen keys that can't escape the tenant, policies scoped to one key.

The embedded engine enforces neither signatures, expiry nor POST policies, so those documents
are checked here directly rather than claimed end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from tasks import grants

NOW = datetime(2026, 11, 23, 10, 15, 0, tzinfo=UTC)


@given(
    tenant=st.text(min_size=1).filter(lambda t: any(c.isalnum() or c in "_-" for c in t)),
    name=st.text(),
)
def test_no_name_escapes_the_tenant_prefix(tenant: str, name: str) -> None:
    try:
        key = grants.grant_key(tenant, name, now=NOW, uid="u")
    except grants.GrantError:
        return  # a tenant with nothing usable is refused, never guessed
    prefix = grants.sanitize_tenant(tenant) + "/"
    assert key.startswith(prefix)
    rest = key[len(prefix) :]
    assert "/" not in rest and "\\" not in rest
    assert ".." not in key
    assert not any(ord(c) < 32 or ord(c) == 127 for c in key)
    assert len(rest) <= grants.MAX_NAME_CHARS + len("_20261123T101500Z_u")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("orders.csv", "acme/orders_20261123T101500Z_u.csv"),
        ("../../etc/passwd.csv.gz", "acme/_._etc_passwd_20261123T101500Z_u.csv.gz"),
        ("/abs\x00path.tsv", "acme/_abspath_20261123T101500Z_u.tsv"),
        ("", "acme/file_20261123T101500Z_u"),
        ("Cafe\u0301.csv", "acme/Caf\u00e9_20261123T101500Z_u.csv"),
    ],
)
def test_keys_are_readable_and_keep_the_extensions(name: str, expected: str) -> None:
    assert grants.grant_key("acme", name, now=NOW, uid="u") == expected


def test_a_tenant_without_usable_characters_is_refused() -> None:
    with pytest.raises(grants.GrantError):
        grants.grant_key("../", "x.csv")


def test_the_session_policy_allows_exactly_one_key() -> None:
    policy = grants.session_policy("staging", "acme/x_1.csv")
    (statement,) = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == "arn:aws:s3:::staging/acme/x_1.csv"
    assert set(statement["Action"]) == {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    }
    assert "*" not in json.dumps(policy)


def s3() -> object:
    return boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="x",
        config=Config(signature_version="s3v4"),
    )


def test_presigned_put_is_bound_to_the_key_content_type_and_expiry() -> None:
    grant = grants.presigned_put(s3(), "staging", "acme/x.csv", "text/csv", expires=900)
    url = urlparse(grant["url"])
    query = parse_qs(url.query)
    assert url.path == "/acme/x.csv"
    assert query["X-Amz-Expires"] == ["900"]
    assert "content-type" in query["X-Amz-SignedHeaders"][0]
    assert grant["headers"] == {"Content-Type": "text/csv"}


def test_presigned_post_fixes_the_key_and_the_size_range() -> None:
    import base64

    grant = grants.presigned_post(s3(), "staging", "acme/x.csv", max_bytes=1024)
    policy = json.loads(base64.b64decode(grant["fields"]["policy"]))
    assert ["content-length-range", 1, 1024] in policy["conditions"]
    assert {"key": "acme/x.csv"} in policy["conditions"]
    assert grant["fields"]["key"] == "acme/x.csv"


def test_temporary_credentials_carry_the_session_policy_and_an_hour_at_most() -> None:
    sts = boto3.client(
        "sts", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(sts) as stub:
        stub.add_response(
            "assume_role",
            {
                "Credentials": {
                    "AccessKeyId": "ASIAEXAMPLE1234567",
                    "SecretAccessKey": "s",
                    "SessionToken": "t",
                    "Expiration": NOW,
                }
            },
            {
                "RoleArn": "arn:aws:iam::111122223333:role/uploader",
                "RoleSessionName": stub_any(),
                "Policy": json.dumps(grants.session_policy("staging", "acme/x.csv")),
                "DurationSeconds": 3600,
            },
        )
        grant = grants.temporary_credentials(
            sts, "arn:aws:iam::111122223333:role/uploader", "staging", "acme/x.csv", 7200
        )
    assert grant["sessionToken"] == "t" and grant["key"] == "acme/x.csv"


def stub_any() -> object:
    from botocore.stub import ANY

    return ANY
