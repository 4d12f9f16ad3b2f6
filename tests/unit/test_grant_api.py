"""The embedded twin of the grant API: the JWT authorizer's checks and the payload-2.0 proxy."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from chute.local.grant_api import Authorizer, GrantApi

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_pool"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})


def token(key: RSAKey = KEY, **overrides: Any) -> str:
    claims = {
        "iss": ISSUER,
        "aud": "client-1",
        "exp": int(time.time()) + 600,
        "token_use": "id",
        "custom:tenant": "acme",
        **overrides,
    }
    return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)


def authorizer() -> Authorizer:
    jwks = KeySet([KEY]).as_dict(private=False)
    return Authorizer.from_jwks(ISSUER, ("client-1",), jwks)


@pytest.mark.parametrize("scheme", ["Bearer ", "bearer ", ""])
def test_a_valid_token_yields_its_claims_as_strings(scheme: str) -> None:
    claims = authorizer().claims(f"{scheme}{token()}")
    assert claims is not None
    assert claims["custom:tenant"] == "acme" and claims["exp"].isdigit()


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer not-a-token",
        f"Bearer {token(OTHER_KEY)}",  # signed by someone else
        f"Bearer {token(iss='https://evil.example')}",
        f"Bearer {token(aud='client-2')}",
        f"Bearer {token(exp=int(time.time()) - 60)}",
    ],
)
def test_anything_else_is_unauthorized(header: str | None) -> None:
    assert authorizer().claims(header) is None


class Recorder:
    def __init__(self, response: dict[str, Any] | None) -> None:
        self.response = response
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any] | None:
        self.events.append(event)
        return self.response


def api(recorder: Recorder) -> GrantApi:
    return GrantApi(host="127.0.0.1", port=0, authorizer=authorizer(), invoke=recorder)


def test_the_function_gets_the_verified_claims_and_its_response_is_returned() -> None:
    recorder = Recorder(
        {"statusCode": 201, "headers": {"Content-Type": "application/json"}, "body": "{}"}
    )
    grant_api = api(recorder)
    try:
        status, headers, body = grant_api.handle(
            "/grants", f"Bearer {token()}", b'{"name": "a.csv"}', {"Authorization": "x"}
        )
    finally:
        grant_api.stop()
    assert (status, headers, body) == (201, {"Content-Type": "application/json"}, b"{}")
    (event,) = recorder.events
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["custom:tenant"] == "acme"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert json.loads(event["body"]) == {"name": "a.csv"}
    assert "authorization" not in event["headers"]  # the token is not passed on


@pytest.mark.parametrize(
    ("path", "auth", "body", "response", "status"),
    [
        ("/other", True, b"{}", {}, 404),
        ("/grants", False, b"{}", {}, 401),
        ("/grants", True, None, {}, 413),  # over the body limit
        ("/grants", True, b"{}", None, 500),  # the function failed
    ],
)
def test_the_gateway_answers_for_itself(
    path: str, auth: bool, body: bytes | None, response: dict[str, Any] | None, status: int
) -> None:
    recorder = Recorder(response)
    grant_api = api(recorder)
    try:
        got, _, _ = grant_api.handle(path, f"Bearer {token()}" if auth else None, body, {})
    finally:
        grant_api.stop()
    assert got == status
    # the gateway refuses before the function runs; a function failure is its own 500
    assert len(recorder.events) == (1 if status == 500 else 0)


def test_over_http_preflight_routes_and_malformed_lengths() -> None:
    import http.client
    from urllib.parse import urlparse

    recorder = Recorder({"statusCode": 200, "headers": {}, "body": '{"ok": true}'})
    grant_api = api(recorder)
    grant_api.start()
    url = urlparse(grant_api.url)

    def send(method: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, Any]:
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
        connection.putrequest(method, url.path, skip_accept_encoding=True)
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.endheaders(body or None)
        response = connection.getresponse()
        result = response.status, response
        response.read()
        connection.close()
        return result

    try:
        status, preflight = send("OPTIONS", {"Origin": "https://app.example"})
        assert status == 204
        assert preflight.getheader("Access-Control-Allow-Origin") == "*"
        assert "authorization" in preflight.getheader("Access-Control-Allow-Headers")
        assert send("GET", {})[0] == 404
        assert send("POST", {"Content-Length": "many"})[0] == 400
        body = b'{"name": "a.csv"}'
        auth = {"Authorization": f"Bearer {token()}", "Content-Length": str(len(body))}
        assert send("POST", auth, body)[0] == 200
    finally:
        grant_api.stop()
    assert [json.loads(e["body"]) for e in recorder.events] == [{"name": "a.csv"}]
