"""Upload grants: server-chosen keys that can't escape the tenant, policies scoped to one key.

The embedded engine enforces neither signatures, expiry nor POST policies, so those documents
are checked here directly rather than claimed end to end."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from tasks import entry
from tasks.adapters.signer import AwsSigner
from tasks.errors import PermanentError
from tasks.grant import domain as grants
from tasks.grant import handler as grant_handler
from tasks.grant.domain import GrantError, GrantRequest, mint
from tasks.models import Head, ObjectRef
from tasks.settings import GrantSettings, ValidateSettings
from tasks.validate.domain import validate

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
    with pytest.raises(grants.NoTenant):
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


ROLE = "arn:aws:iam::111122223333:role/uploader"
SETTINGS = GrantSettings(
    staging_bucket="staging", upload_role_arn=ROLE, max_file_bytes=10 * 1024**3
)


def signer(region: str = "us-east-1") -> AwsSigner:
    session = boto3.Session(
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x", region_name=region
    )
    return AwsSigner(session=session)


def minted(settings: GrantSettings = SETTINGS, **request: Any) -> dict[str, Any]:
    body = {"name": "partner.csv", **request}
    return mint(GrantRequest.from_json(body), "acme", settings, signer(), now=NOW, uid="u")


def test_presigned_put_is_bound_to_the_key_content_type_and_expiry() -> None:
    request = GrantRequest(name="partner.csv", kind="put")
    grant = mint(request, "acme", SETTINGS, signer("eu-west-1"), now=NOW, uid="u")
    url = urlparse(grant["url"])
    query = parse_qs(url.query)
    assert grant["key"] == "acme/partner_20261123T101500Z_u.csv"
    # the regional endpoint: the global one redirects for new buckets outside us-east-1
    assert url.netloc == "staging.s3.eu-west-1.amazonaws.com"
    assert url.path == "/acme/partner_20261123T101500Z_u.csv"
    assert query["X-Amz-Expires"] == ["900"]
    # S3 recomputes the signature over the signed headers: another Content-Type fails it
    assert query["X-Amz-SignedHeaders"] == ["content-type;host"]
    assert grant["method"] == "PUT" and grant["headers"] == {"Content-Type": "text/csv"}


def test_a_declared_size_is_signed_into_the_put() -> None:
    grant = minted(kind="put", size=1234)
    query = parse_qs(urlparse(grant["url"]).query)
    # the browser sends Content-Length itself; a body of another size fails the signature
    assert query["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]
    assert grant["size"] == 1234 and grant["headers"] == {"Content-Type": "text/csv"}


def test_presigned_post_fixes_the_key_the_content_type_and_the_size_range() -> None:
    grant = minted(kind="post", contentType="application/vnd.ms-excel")
    policy = json.loads(base64.b64decode(grant["fields"]["policy"]))
    key = "acme/partner_20261123T101500Z_u.csv"
    largest = grants.MAX_SINGLE_UPLOAD_BYTES  # under the 10 GiB maximum: S3's 5 GB POST cap
    assert ["content-length-range", 1, largest] in policy["conditions"]
    assert {"key": key} in policy["conditions"]
    assert {"Content-Type": "application/vnd.ms-excel"} in policy["conditions"]
    assert grant["fields"]["key"] == key
    assert grant["fields"]["Content-Type"] == "application/vnd.ms-excel"
    assert grant["maxBytes"] == largest
    expiry = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert 0 < (expiry - datetime.now(UTC)).total_seconds() <= 900


def test_a_post_is_capped_by_the_maximum_file_size_when_it_is_smaller() -> None:
    grant = minted(GrantSettings(staging_bucket="staging", max_file_bytes=1000), kind="post")
    policy = json.loads(base64.b64decode(grant["fields"]["policy"]))
    assert ["content-length-range", 1, 1000] in policy["conditions"]


def test_temporary_credentials_carry_the_session_policy_for_one_hour() -> None:
    s = signer()
    key = "acme/partner_20261123T101500Z_u.csv"
    with Stubber(s._sts) as stub:
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
                "RoleArn": ROLE,
                "RoleSessionName": "chute-upload-u",
                "Policy": json.dumps(grants.session_policy("staging", key)),
                "DurationSeconds": 3600,
            },
        )
        grant = mint(
            GrantRequest(name="partner.csv", kind="credentials", size=20 * 1024**3 // 4),
            "acme",
            SETTINGS,
            s,
            now=NOW,
            uid="u",
        )
        stub.assert_no_pending_responses()
    assert grant["sessionToken"] == "t" and grant["key"] == key and grant["bucket"] == "staging"
    assert grant["region"] == "us-east-1"


def test_keys_start_with_the_pipeline_prefix() -> None:
    settings = GrantSettings(staging_bucket="staging", prefix="incoming/")
    assert minted(settings)["key"].startswith("incoming/acme/partner_")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("a.csv", "text/csv"), ("a.tsv.gz", "application/gzip"), ("a.psv.zst", "application/zstd")],
)
def test_the_content_type_follows_the_extension_unless_asked(name: str, content_type: str) -> None:
    assert minted(name=name)["headers"] == {"Content-Type": content_type}


@pytest.mark.parametrize(
    ("request_body", "settings", "message"),
    [
        ({"name": "tool.exe"}, SETTINGS, "not processed"),
        ({"name": "a.csv", "size": 11 * 1024**3}, SETTINGS, "over the maximum file size"),
        ({"name": "a.csv", "size": 6 * 1024**3}, SETTINGS, '"kind": "credentials"'),
        ({"name": "a.csv", "kind": "post", "size": 6 * 1024**3}, SETTINGS, "POST upload"),
        ({"name": "a.csv", "contentType": "text/html"}, SETTINGS, "not accepted"),
        (
            {"name": "a.csv", "kind": "credentials"},
            GrantSettings(staging_bucket="staging"),
            "no upload role",
        ),
    ],
)
def test_grants_the_pipeline_would_reject_are_refused_early(
    request_body: dict[str, Any], settings: GrantSettings, message: str
) -> None:
    with pytest.raises(GrantError, match=message) as caught:
        mint(GrantRequest.from_json(request_body), "acme", settings, signer())
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({}, '"name"'),
        ({"name": "  "}, '"name"'),
        ({"name": "a.csv", "kind": "get"}, '"kind"'),
        ({"name": "a.csv", "size": -1}, '"size"'),
        ({"name": "a.csv", "size": True}, '"size"'),
        ({"name": "a.csv", "contentType": 3}, '"contentType"'),
        ({"name": "a.csv", "tenant": "other"}, "unknown field"),
    ],
)
def test_malformed_requests_say_what_is_wrong(body: object, message: str) -> None:
    with pytest.raises(GrantError, match=message):
        GrantRequest.from_json(body)


# --- the handler: API Gateway HTTP API (payload 2.0) behind a JWT authorizer -------------------


def api_event(body: object, claims: dict[str, str] | None = None, method: str = "POST") -> dict:
    return {
        "version": "2.0",
        "routeKey": "POST /grants",
        "requestContext": {
            "http": {"method": method, "path": "/grants"},
            "authorizer": {"jwt": {"claims": claims or {}, "scopes": None}},
        },
        "body": body if isinstance(body, str) else json.dumps(body),
        "isBase64Encoded": False,
    }


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CHUTE_STAGING_BUCKET", "staging")
    monkeypatch.setenv("CHUTE_UPLOAD_ROLE_ARN", ROLE)
    monkeypatch.delenv("CHUTE_TENANT_CLAIM", raising=False)
    monkeypatch.setattr(grant_handler, "_signer", signer)
    entry.reset()
    yield grant_handler.handler
    entry.reset()


def call(api: Any, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = api(event, None)
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def test_the_tenant_comes_from_the_verified_token(api: Any) -> None:
    status, grant = call(api, api_event({"name": "x.csv"}, {"custom:tenant": "acme"}))
    assert status == 200
    assert grant["key"].startswith("acme/x_") and grant["method"] == "PUT"


def test_a_base64_body_is_read(api: Any) -> None:
    event = api_event(base64.b64encode(b'{"name": "x.csv", "kind": "post"}').decode())
    event["isBase64Encoded"] = True
    event["requestContext"]["authorizer"]["jwt"]["claims"] = {"custom:tenant": "acme"}
    status, grant = call(api, event)
    assert status == 200 and grant["kind"] == "post"


@pytest.mark.parametrize(
    ("event", "status", "message"),
    [
        (api_event({"name": "x.csv"}), 403, "custom:tenant"),
        (api_event({"name": "x.csv"}, {"custom:tenant": "../"}), 403, "no usable"),
        (api_event("{not json", {"custom:tenant": "acme"}), 400, "not JSON"),
        (api_event({"name": "x.exe"}, {"custom:tenant": "acme"}), 400, "not processed"),
        (api_event({"name": "x.csv"}, {"custom:tenant": "acme"}, "GET"), 405, "POST"),
    ],
)
def test_refusals_are_clear_statuses(
    api: Any, event: dict[str, Any], status: int, message: str
) -> None:
    got, document = call(api, event)
    assert got == status and message in document["error"]


def test_an_unexpected_failure_is_a_500_without_details(
    api: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Broken:
        region = "us-east-1"

        def presign_put(self, *args: object, **kwargs: object) -> str:
            raise RuntimeError("secret internals")

    monkeypatch.setattr(grant_handler, "_signer", Broken)
    status, document = call(api, api_event({"name": "x.csv"}, {"custom:tenant": "acme"}))
    assert status == 500 and "secret" not in document["error"]
    assert "secret internals" in capsys.readouterr().out  # in the log, for the operators


# --- limits enforced twice: what the grant refuses, Validate rejects too ------------------------

ENV = {
    "CHUTE_STAGING_BUCKET": "staging",
    "CHUTE_OUTPUT_BUCKET": "output",
    "CHUTE_SUFFIXES": ".csv,.csv.gz",
    "CHUTE_MAX_FILE_BYTES": "1000",
}


class OneObject:
    """Validate's store: an object of the given size whose content starts with a CSV header."""

    def __init__(self, size: int) -> None:
        self.size = size

    def head(self, ref: ObjectRef) -> Head:
        return Head(size=self.size, etag="e", version_id=None)

    def read_current(self, bucket: str, key: str, length: int) -> tuple[Head, bytes] | None:
        return self.head(ObjectRef(bucket=bucket, key=key, size=0)), self.read_prefix(
            ObjectRef(bucket=bucket, key=key, size=0), length
        )

    def read_prefix(self, ref: ObjectRef, length: int) -> bytes:
        return b"id,name\n1,Ann\n"[:length]


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("orders.csv", 14),
        ("orders.CSV", 14),
        ("orders.tsv", 14),  # not in this deployment's suffixes
        ("orders.csv.exe", 14),
        ("orders.csv", 1000),
        ("orders.csv", 1001),  # over the maximum
    ],
)
def test_the_grant_and_validate_apply_the_same_limits(name: str, size: int) -> None:
    try:
        grant = mint(
            GrantRequest(name=name, size=size), "acme", GrantSettings.from_mapping(ENV), signer()
        )
    except GrantError:
        granted = False
    else:
        granted = True
    # a client that bypasses the grant (or uploads more than it said) meets Validate
    key = grant["key"] if granted else f"acme/{name}"
    try:
        validate(
            ObjectRef(bucket="staging", key=key, size=size),
            OneObject(size),
            ValidateSettings.from_mapping(ENV),
        )
    except PermanentError:
        validated = False
    else:
        validated = True
    assert granted == validated
