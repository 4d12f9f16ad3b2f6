"""The upload grant service in the synthesized stack: the HTTP API and its JWT authorizer, the
grant function, the upload role, and the Cognito user pool (or, with chute:grant_jwt_issuer,
none). Logical IDs are asked from the stack, never written here."""

from __future__ import annotations

import json
from typing import Any

import pytest
from constructs import IConstruct

from infra.components.grants import THROTTLE_BURST, THROTTLE_RATE_PER_SECOND, UPLOAD_ACTIONS
from infra.config import ChuteProps
from tasks import names
from tests.support.synth import DEFAULT_CONTEXT, Synth

ISSUER = "https://login.example.com/realms/partners"
AUDIENCE = ("chute-uploads", "chute-devices")
ORIGIN = "https://upload.example.com"
PREFIX = "in/"


@pytest.fixture(scope="module")
def own_issuer(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The bring-your-own-OIDC variant, with a key prefix and one allowed browser origin."""
    return Synth(
        tmp_path_factory.mktemp("cdk.out.own-issuer"),
        context={
            **DEFAULT_CONTEXT,
            "chute:grant_jwt_issuer": ISSUER,
            "chute:grant_jwt_audience": ",".join(AUDIENCE),
            "chute:grant_tenant_claim": "org",
            "chute:grant_expires_seconds": "300",
            "chute:upload_origins": ORIGIN,
            "chute:key_prefix": PREFIX,
        },
    )


# --- helpers ------------------------------------------------------------------------------------


def _arn(synth: Synth, construct: IConstruct) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [synth.logical_id(construct), "Arn"]}


def _properties(synth: Synth, construct: IConstruct) -> dict[str, Any]:
    props: dict[str, Any] = synth.json["Resources"][synth.logical_id(construct)]["Properties"]
    return props


def _role_statements(synth: Synth, role: IConstruct) -> list[dict[str, Any]]:
    """Every statement of the inline policies attached to the role."""
    ref = synth.ref(role)
    return [
        st
        for policy in synth.resources("AWS::IAM::Policy").values()
        if ref in policy["Properties"]["Roles"]
        for st in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return {value} if isinstance(value, str) else set(value)


def _objects(synth: Synth, keys: str = "*") -> dict[str, Any]:
    staging = _arn(synth, synth.stack.storage.staging)
    return {"Fn::Join": ["", [staging, f"/{keys}"]]}


def _pool(synth: Synth) -> tuple[IConstruct, IConstruct]:
    grants = synth.stack.grants
    assert grants.user_pool is not None and grants.client is not None
    return grants.user_pool, grants.client


# --- the API ------------------------------------------------------------------------------------
def test_the_route_is_post_grants_behind_a_jwt_authorizer_of_the_user_pool(synth: Synth) -> None:
    pool, client = _pool(synth)
    route = synth.one("AWS::ApiGatewayV2::Route")
    assert route["RouteKey"] == f"POST {names.GRANT_ROUTE}"
    assert route["AuthorizationType"] == "JWT"
    authorizer = synth.one("AWS::ApiGatewayV2::Authorizer")
    assert route["AuthorizerId"] == {"Ref": _authorizer_id(synth)}
    assert authorizer["AuthorizerType"] == "JWT"
    assert authorizer["IdentitySource"] == ["$request.header.Authorization"]
    assert authorizer["JwtConfiguration"] == {
        "Audience": [synth.ref(client)],
        "Issuer": {
            "Fn::Join": [
                "",
                [
                    "https://cognito-idp.",
                    {"Ref": "AWS::Region"},
                    ".",
                    {"Ref": "AWS::URLSuffix"},
                    "/",
                    synth.ref(pool),
                ],
            ]
        },
    }


def _authorizer_id(synth: Synth) -> str:
    (logical_id,) = synth.resources("AWS::ApiGatewayV2::Authorizer")
    return logical_id


def test_the_route_invokes_the_grant_function_with_payload_v2(synth: Synth) -> None:
    integration = synth.one("AWS::ApiGatewayV2::Integration")
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "2.0"
    assert integration["IntegrationUri"] == _arn(synth, synth.stack.grants.function)
    route = synth.one("AWS::ApiGatewayV2::Route")
    (integration_id,) = synth.resources("AWS::ApiGatewayV2::Integration")
    assert route["Target"] == {"Fn::Join": ["", ["integrations/", {"Ref": integration_id}]]}
    permission = [
        p["Properties"]
        for p in synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == _arn(synth, synth.stack.grants.function)
    ]
    assert len(permission) == 1
    assert permission[0]["Principal"] == "apigateway.amazonaws.com"
    assert json.dumps(permission[0]["SourceArn"]).endswith(f'"/*/*{names.GRANT_ROUTE}"]]}}')


def test_the_default_stage_is_throttled_and_access_logged_as_json(synth: Synth) -> None:
    stage = synth.one("AWS::ApiGatewayV2::Stage")
    assert stage["StageName"] == "$default"
    assert stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": THROTTLE_BURST,
        "ThrottlingRateLimit": THROTTLE_RATE_PER_SECOND,
    }
    access_logs = synth.stack.grants.access_logs
    assert stage["AccessLogSettings"]["DestinationArn"] == _arn(synth, access_logs)
    fields = json.loads(stage["AccessLogSettings"]["Format"])
    assert fields["requestId"] == "$context.requestId"
    assert {"$context.status", "$context.authorizer.error", "$context.identity.sourceIp"} <= set(
        fields.values()
    )
    group = _properties(synth, access_logs)
    assert group["RetentionInDays"] == synth.stack.props.log_retention_days


def test_cors_allows_post_with_authorization_from_the_upload_origins(synth: Synth) -> None:
    api = synth.one("AWS::ApiGatewayV2::Api")
    cors = api["CorsConfiguration"]
    assert cors["AllowMethods"] == ["POST"]
    assert cors["AllowHeaders"] == ["authorization", "content-type"]
    assert cors["AllowOrigins"] == list(synth.stack.props.upload_origins) == ["*"]


# --- the grant function and the upload role -----------------------------------------------------
def test_the_grant_function_has_exactly_its_settings(synth: Synth) -> None:
    grants = synth.stack.grants
    env = _properties(synth, grants.function)["Environment"]["Variables"]
    assert set(env) == set(names.FUNCTION_SETTINGS["grant"])
    assert env[names.ENV_STAGING_BUCKET] == synth.ref(synth.stack.storage.staging)
    assert env[names.ENV_UPLOAD_ROLE_ARN] == _arn(synth, grants.upload_role)
    assert env[names.ENV_TENANT_CLAIM] == names.DEFAULT_TENANT_CLAIM
    assert env[names.ENV_GRANT_EXPIRES_SECONDS] == str(names.DEFAULT_GRANT_EXPIRES_SECONDS)
    assert env[names.ENV_PREFIX] == ""


def test_the_upload_role_allows_exactly_the_upload_actions_on_staging_objects(
    synth: Synth,
) -> None:
    role = synth.stack.grants.upload_role
    statements = _role_statements(synth, role)
    assert len(statements) == 1
    (statement,) = statements
    assert statement["Effect"] == "Allow"
    upload = {"s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}
    assert _actions(statement) == set(UPLOAD_ACTIONS) == upload
    assert statement["Resource"] == _objects(synth)
    assert "Condition" not in statement


def test_the_upload_role_trusts_the_grant_function_and_the_account_for_an_hour(
    synth: Synth,
) -> None:
    grants = synth.stack.grants
    props = _properties(synth, grants.upload_role)
    assert props["MaxSessionDuration"] == 3600
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert (trust["Effect"], trust["Action"]) == ("Allow", "sts:AssumeRole")
    root = {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"],
        ]
    }
    assert sorted(map(json.dumps, trust["Principal"]["AWS"])) == sorted(
        map(json.dumps, [_arn(synth, grants.task.role), root])
    )


def test_the_grant_role_may_assume_only_the_upload_role_and_only_put_objects(
    synth: Synth,
) -> None:
    grants = synth.stack.grants
    statements = _role_statements(synth, grants.task.role)
    assume = [st for st in statements if any(a.startswith("sts:") for a in _actions(st))]
    assert len(assume) == 1
    assert _actions(assume[0]) == {"sts:AssumeRole"}
    assert assume[0]["Resource"] == _arn(synth, grants.upload_role)
    s3 = [st for st in statements if any(a.startswith("s3:") for a in _actions(st))]
    assert [(_actions(st), st["Resource"]) for st in s3] == [({"s3:PutObject"}, _objects(synth))]
    others = set().union(*map(_actions, statements)) - {"sts:AssumeRole", "s3:PutObject"}
    assert others == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    }


def test_operators_may_assume_the_upload_role(synth: Synth) -> None:
    policy = synth.one("AWS::IAM::ManagedPolicy")
    assume = [
        st for st in policy["PolicyDocument"]["Statement"] if "sts:AssumeRole" in _actions(st)
    ]
    assert len(assume) == 1
    assert _actions(assume[0]) == {"sts:AssumeRole"}
    assert assume[0]["Resource"] == _arn(synth, synth.stack.grants.upload_role)


# --- the user pool --------------------------------------------------------------------------------
def test_the_user_pool_is_admin_only_with_an_immutable_tenant_and_strong_passwords(
    synth: Synth,
) -> None:
    resource = synth.json["Resources"][synth.logical_id(_pool(synth)[0])]
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    pool = resource["Properties"]
    assert pool["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert pool["AliasAttributes"] == ["email"]  # sign in with the username or the e-mail
    assert pool["Schema"] == [
        {
            "AttributeDataType": "String",
            "Mutable": False,
            "Name": names.DEFAULT_TENANT_CLAIM.removeprefix("custom:"),
            "StringAttributeConstraints": {"MaxLength": "64", "MinLength": "1"},
        }
    ]
    password = pool["Policies"]["PasswordPolicy"]
    assert password["MinimumLength"] >= 12
    assert all(
        password[f"Require{kind}"] for kind in ("Lowercase", "Uppercase", "Numbers", "Symbols")
    )


def test_the_app_client_has_no_secret_and_signs_in_with_passwords_for_an_hour(
    synth: Synth,
) -> None:
    client = synth.one("AWS::Cognito::UserPoolClient")
    assert client["GenerateSecret"] is False
    assert set(client["ExplicitAuthFlows"]) == {
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    }
    assert (client["IdTokenValidity"], client["TokenValidityUnits"]["IdToken"]) == (60, "minutes")
    assert client["AllowedOAuthFlowsUserPoolClient"] is False
    assert client["UserPoolId"] == synth.ref(_pool(synth)[0])


# --- outputs ------------------------------------------------------------------------------------
def test_outputs_give_the_grant_url_the_upload_role_and_the_user_pool(synth: Synth) -> None:
    grants = synth.stack.grants
    pool, client = _pool(synth)
    outputs = synth.json["Outputs"]
    url = outputs["GrantApiUrl"]["Value"]["Fn::Join"][1]
    assert url == [
        "https://",
        synth.ref(grants.api),
        ".execute-api.",
        {"Ref": "AWS::Region"},
        ".",
        {"Ref": "AWS::URLSuffix"},
        names.GRANT_ROUTE,
    ]
    assert outputs["UploadRoleArn"]["Value"] == _arn(synth, grants.upload_role)
    assert outputs["UserPoolId"]["Value"] == synth.ref(pool)
    assert outputs["UserPoolClientId"]["Value"] == synth.ref(client)


# --- your own OpenID Connect provider -----------------------------------------------------------
def test_with_an_own_issuer_no_user_pool_is_created_and_its_tokens_are_accepted(
    own_issuer: Synth,
) -> None:
    assert own_issuer.resources("AWS::Cognito::UserPool") == {}
    assert own_issuer.resources("AWS::Cognito::UserPoolClient") == {}
    authorizer = own_issuer.one("AWS::ApiGatewayV2::Authorizer")
    assert authorizer["JwtConfiguration"] == {"Issuer": ISSUER, "Audience": list(AUDIENCE)}
    outputs = own_issuer.json["Outputs"]
    assert {"GrantApiUrl", "UploadRoleArn"} <= set(outputs)
    assert not {"UserPoolId", "UserPoolClientId"} & set(outputs)


def test_the_own_issuer_variant_passes_claim_expiry_prefix_and_origins_through(
    own_issuer: Synth,
) -> None:
    grants = own_issuer.stack.grants
    env = _properties(own_issuer, grants.function)["Environment"]["Variables"]
    assert env[names.ENV_TENANT_CLAIM] == "org"
    assert env[names.ENV_GRANT_EXPIRES_SECONDS] == "300"
    assert env[names.ENV_PREFIX] == PREFIX
    prefixed = _objects(own_issuer, f"{PREFIX}*")
    (upload,) = _role_statements(own_issuer, grants.upload_role)
    assert upload["Resource"] == prefixed
    puts = [
        st
        for st in _role_statements(own_issuer, grants.task.role)
        if "s3:PutObject" in _actions(st)
    ]
    assert [st["Resource"] for st in puts] == [prefixed]
    api = own_issuer.one("AWS::ApiGatewayV2::Api")
    assert api["CorsConfiguration"]["AllowOrigins"] == [ORIGIN]
    staging = _properties(own_issuer, own_issuer.stack.storage.staging)
    assert [r["AllowedOrigins"] for r in staging["CorsConfiguration"]["CorsRules"]] == [[ORIGIN]]


def test_the_own_issuer_variant_has_no_unacknowledged_nag_findings(own_issuer: Synth) -> None:
    report = json.loads((own_issuer.outdir / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []


# --- parameters ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"grant_jwt_issuer": ISSUER}, "give both"),
        ({"grant_jwt_audience": AUDIENCE}, "give both"),
        ({"grant_jwt_issuer": "http://login.example.com", "grant_jwt_audience": AUDIENCE}, "https"),
        ({"grant_expires_seconds": 0}, "1 to 3600"),
        ({"grant_expires_seconds": 3601}, "1 to 3600"),
        ({"grant_tenant_claim": "org"}, "own issuer"),
        ({"upload_origins": ()}, "at least one origin"),
    ],
)
def test_grant_parameters_are_checked(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ChuteProps(**values)


def test_grant_parameters_come_from_context() -> None:
    context = {
        "chute:grant_jwt_issuer": ISSUER,
        "chute:grant_jwt_audience": "a, b",
        "chute:grant_tenant_claim": "org",
        "chute:grant_expires_seconds": "600",
        "chute:upload_origins": "https://a.example.com,https://b.example.com",
    }
    props = ChuteProps.from_context(context.get)
    assert props.grant_jwt_issuer == ISSUER
    assert props.grant_jwt_audience == ("a", "b")
    assert props.grant_tenant_claim == "org"
    assert props.grant_expires_seconds == 600
    assert props.upload_origins == ("https://a.example.com", "https://b.example.com")
    defaults = ChuteProps()
    assert defaults.grant_jwt_issuer is None and defaults.grant_jwt_audience == ()
    assert defaults.grant_tenant_claim == names.DEFAULT_TENANT_CLAIM
    assert defaults.grant_expires_seconds == names.DEFAULT_GRANT_EXPIRES_SECONDS == 900
    assert defaults.upload_origins == ("*",)
