"""The embedded twin of the stack's grant API: what API Gateway's HTTP API does in front of the
grant function, served by `chute up` on its own port.

Like the JWT authorizer it verifies the bearer token (RS256 signature against the issuer's
JWKS, ``iss``, ``aud``, expiry) and answers 401 without calling the function; like the Lambda
proxy integration (payload format 2.0) it passes the verified claims in
``requestContext.authorizer.jwt.claims`` and turns the function's ``{statusCode, headers,
body}`` into the HTTP response. The identity provider is the embedded Cognito user pool, so
clients sign in exactly as they would on AWS (e.g. ``InitiateAuth`` with USER_PASSWORD_AUTH).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tasks import names

MAX_BODY_BYTES = 64 * 1024
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "authorization,content-type",
    "Access-Control-Max-Age": "600",
}


@dataclass(frozen=True)
class Authorizer:
    """An HTTP API JWT authorizer: one issuer, its keys, the accepted audiences."""

    issuer: str
    audiences: tuple[str, ...]
    keys: KeySet

    @classmethod
    def from_jwks(cls, issuer: str, audiences: tuple[str, ...], jwks: Any) -> Authorizer:
        return cls(issuer=issuer, audiences=audiences, keys=KeySet.import_key_set(jwks))

    def claims(self, authorization: str | None) -> dict[str, str] | None:
        """The token's claims (as strings, like API Gateway passes them), or None: 401."""
        if not authorization:
            return None
        scheme, _, rest = authorization.strip().partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else authorization.strip()
        try:
            decoded = jwt.decode(token, self.keys, algorithms=["RS256"])
            registry = jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer},
                exp={"essential": True},
            )
            registry.validate(decoded.claims)
        except (JoseError, ValueError):
            return None
        claims = decoded.claims
        audience = claims.get("aud") or claims.get("client_id")
        if audience not in self.audiences:
            return None
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in claims.items()}


Invoke = Callable[[dict[str, Any]], dict[str, Any] | None]
"""Calls the grant function with an event; its response, or None when the function failed."""


class GrantApi:
    def __init__(self, *, host: str, port: int, authorizer: Authorizer, invoke: Invoke) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # no access log on the terminal

            def do_OPTIONS(self) -> None:
                self._send(HTTPStatus.NO_CONTENT, {}, b"")

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0:
                    self._send(*api.message(400, "Bad Request"))
                    return
                body = self.rfile.read(length) if 0 < length <= MAX_BODY_BYTES else b""
                status, headers, out = api.handle(
                    self.path,
                    self.headers.get("Authorization"),
                    body if length <= MAX_BODY_BYTES else None,
                    self.headers,
                )
                self._send(status, headers, out)

            def do_GET(self) -> None:
                self._send(*api.not_found())

            do_PUT = do_DELETE = do_PATCH = do_GET

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in {**CORS_HEADERS, **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._authorizer = authorizer
        self._invoke = invoke
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        bound = self._server.server_address[1]  # port 0: the one the system chose
        self.url = f"http://{host}:{bound}{names.GRANT_ROUTE}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="grant-api"
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for a serve_forever() that never ran
            self._server.shutdown()
        self._server.server_close()

    @staticmethod
    def message(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps({"message": message}).encode()
        return status, {"Content-Type": "application/json"}, body

    def not_found(self) -> tuple[int, dict[str, str], bytes]:
        return self.message(404, "Not Found")

    def handle(
        self, path: str, authorization: str | None, body: bytes | None, headers: Any
    ) -> tuple[int, dict[str, str], bytes]:
        route, _, query = path.partition("?")
        if route != names.GRANT_ROUTE:
            return self.not_found()
        claims = self._authorizer.claims(authorization)
        if claims is None:
            return self.message(401, "Unauthorized")
        if body is None:
            return self.message(413, "Request Entity Too Large")
        event = {
            "version": "2.0",
            "routeKey": f"POST {names.GRANT_ROUTE}",
            "rawPath": route,
            "rawQueryString": query,
            "headers": {k.lower(): v for k, v in headers.items() if k.lower() != "authorization"},
            "requestContext": {
                "http": {"method": "POST", "path": route, "protocol": "HTTP/1.1"},
                "authorizer": {"jwt": {"claims": claims, "scopes": None}},
                "requestId": uuid.uuid4().hex,
                "routeKey": f"POST {names.GRANT_ROUTE}",
                "stage": "$default",
                "timeEpoch": int(time.time() * 1000),
            },
            "body": body.decode("utf-8", errors="replace"),
            "isBase64Encoded": False,
        }
        response = self._invoke(event)
        if not isinstance(response, dict) or "statusCode" not in response:
            return self.message(500, "Internal Server Error")
        out_headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
        return int(response["statusCode"]), out_headers, str(response.get("body", "")).encode()
