"""Lambda entry point of the grant API: ``POST /grants`` behind an API Gateway HTTP API whose
JWT authorizer has verified the caller (payload format 2.0). The tenant is a claim of that
token, never something the request body says.

Responses: 200 the grant; 400 a request the grant refuses (the message says why); 403 no
tenant claim; 405 not a POST; 500 anything else (logged, never shown).
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from tasks import log
from tasks.adapters.signer import AwsSigner
from tasks.entry import lambda_handler, per_container
from tasks.grant.domain import GrantError, GrantRequest, NoTenant, mint
from tasks.settings import GrantSettings


@per_container
def _settings() -> GrantSettings:
    return GrantSettings.from_mapping(os.environ)


@per_container
def _signer() -> AwsSigner:
    return AwsSigner()


def _response(status: int, document: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        "body": json.dumps(document),
    }


def caller_tenant(event: dict[str, Any], claim: str) -> str:
    """The tenant claim of the token API Gateway verified."""
    context = event.get("requestContext") or {}
    jwt = (context.get("authorizer") or {}).get("jwt") or {}
    tenant = (jwt.get("claims") or {}).get(claim)
    if not isinstance(tenant, str) or not tenant.strip():
        raise NoTenant(f"the caller's token has no {claim!r} claim naming its tenant")
    return tenant


def request_body(event: dict[str, Any]) -> object:
    raw = event.get("body") or ""
    try:
        if event.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode("utf-8")
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GrantError(f"the request body is not JSON: {exc}") from exc


@lambda_handler
def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "POST")
    if method != "POST":
        return _response(405, {"error": f"{method} is not allowed; POST a grant request"})
    try:
        settings = _settings()
        tenant = caller_tenant(event, settings.tenant_claim)
        log.bind(tenant=tenant)
        request = GrantRequest.from_json(request_body(event))
        document = mint(request, tenant, settings, _signer())
    except GrantError as exc:
        log.warning("grant refused", status=exc.status, reason=str(exc))
        return _response(exc.status, {"error": str(exc)})
    except Exception as exc:  # the client gets a status, the log gets the details
        log.error("grant failed", error=type(exc).__name__, reason=str(exc))
        return _response(500, {"error": "the grant could not be made; try again later"})
    log.info("grant made", kind=request.kind, key=document["key"])
    return _response(200, document)
