"""The upload grant service: ``POST /grants`` on an API Gateway HTTP API whose JWT authorizer
verifies the caller's token, the grant function (tasks/grant/handler.py) that mints a presigned
PUT or POST, or role credentials, for one staging key, and the upload role those credentials
belong to.

Clients have no AWS credentials, and their tenant must come from a verified identity: the
function reads it from a claim of the token the authorizer checked. By default the identity
provider is a Cognito user pool created here, whose users carry an immutable ``custom:tenant``;
with ``jwt_issuer`` and ``jwt_audience`` the API trusts another OpenID Connect provider instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import jsii
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.components.access import allow_objects
from infra.components.functions import TaskFunction
from tasks import names

# What an upload needs (PutObject also covers Create/UploadPart/CompleteMultipartUpload); each
# credentials grant narrows it to one key with a session policy (tasks.grant.domain).
UPLOAD_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
# One grant per uploaded file: 10 grants a second sustained (36,000 files an hour) is far above
# what partners upload, and the burst lets a client ask for a batch of files at once. The limit
# bounds what a leaked token or a looping client costs (Lambda runs, S3 requests, pipeline
# executions) and keeps the grant function's concurrency at a few instances.
THROTTLE_RATE_PER_SECOND = 10
THROTTLE_BURST = 20
# The user pool's custom attribute naming a user's tenant: Cognito puts it in the ID token as
# "custom:tenant" (names.DEFAULT_TENANT_CLAIM).
TENANT_ATTRIBUTE = names.DEFAULT_TENANT_CLAIM.removeprefix("custom:")
TENANT_MAX_CHARS = 64  # tasks.grant.domain.sanitize_tenant keeps at most 64 characters
TOKEN_VALIDITY = Duration.hours(1)
# One JSON object per request (HTTP API $context variables). No token and no tenant: the
# subject identifies the caller.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "requestTime": "$context.requestTime",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latencyMs": "$context.responseLatency",
    "subject": "$context.authorizer.claims.sub",
    "authorizerError": "$context.authorizer.error",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
}


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    """Stage access logs: JSON lines into a log group."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT))


class UploadGrants(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ecr_assets.DockerImageAsset,
        settings: dict[str, str],
        staging: s3.IBucket,
        key_prefix: str,
        log_retention: logs.RetentionDays,
        jwt_issuer: str | None,
        jwt_audience: Sequence[str],
        tenant_claim: str,
        expires_seconds: int,
        allowed_origins: Sequence[str],
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if bool(jwt_issuer) != bool(jwt_audience):
            raise ValueError("jwt_issuer and jwt_audience: give both or neither")
        keys = f"{key_prefix}*"  # the trigger only starts executions for keys under the prefix

        self.upload_role = iam.Role(
            self,
            "UploadRole",
            # The account: operators' `chute grant --credentials` (OperatorsPolicy); the grant
            # function's role is added below, once it exists.
            assumed_by=iam.AccountRootPrincipal(),
            description="chute uploads into staging; each grant narrows it to one key",
            max_session_duration=Duration.hours(1),
        )
        allow_objects(self.upload_role, staging, UPLOAD_ACTIONS, keys=keys)

        self.task = TaskFunction(
            self,
            "GrantStep",
            step="grant",
            image=image,
            settings={
                **settings,
                names.ENV_STAGING_BUCKET: staging.bucket_name,
                names.ENV_PREFIX: key_prefix,
                names.ENV_UPLOAD_ROLE_ARN: self.upload_role.role_arn,
                names.ENV_GRANT_EXPIRES_SECONDS: str(expires_seconds),
                names.ENV_TENANT_CLAIM: tenant_claim,
            },
            log_retention=log_retention,
            reserved_concurrency=reserved_concurrency,
        )
        self.function = self.task.function
        # Presigned requests carry the function's own signature: S3 checks them against its
        # role, so the role itself may put objects (and do nothing else on the bucket).
        allow_objects(self.task.role, staging, ("s3:PutObject",), keys=keys)
        self.task.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[self.upload_role.role_arn])
        )
        trust = self.upload_role.assume_role_policy
        assert trust is not None  # iam.Role always has one
        trust.add_statements(
            iam.PolicyStatement(
                actions=["sts:AssumeRole"], principals=[iam.ArnPrincipal(self.task.role.role_arn)]
            )
        )

        self.user_pool: cognito.UserPool | None = None
        self.client: cognito.UserPoolClient | None = None
        if jwt_issuer:
            self.issuer, self.audience = jwt_issuer, list(jwt_audience)
        else:
            self.user_pool, self.client = self._user_pool()
            stack = Stack.of(self)
            self.issuer = (
                f"https://cognito-idp.{stack.region}.{stack.url_suffix}/"
                f"{self.user_pool.user_pool_id}"
            )
            # Cognito ID tokens name the app client in `aud` (access tokens carry no custom
            # attributes, so clients send the ID token).
            self.audience = [self.client.user_pool_client_id]

        self.api = apigwv2.HttpApi(
            self,
            "Api",
            api_name=f"{Stack.of(self).stack_name}-grants",
            description="chute upload grants: POST /grants with a bearer token",
            create_default_stage=False,  # the stage below: throttled and access-logged
            cors_preflight=apigwv2.CorsPreflightOptions(
                allow_origins=list(allowed_origins),
                allow_methods=[apigwv2.CorsHttpMethod.POST],
                allow_headers=["authorization", "content-type"],
                max_age=Duration.hours(1),
            ),
        )
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=THROTTLE_RATE_PER_SECOND, burst_limit=THROTTLE_BURST
            ),
            access_log_settings=_AccessLogs(self.access_logs),
        )
        self.authorizer = authorizers.HttpJwtAuthorizer(
            "TokenAuthorizer",
            self.issuer,
            jwt_audience=self.audience,
            identity_source=["$request.header.Authorization"],
            authorizer_name="chute-grant-token",
        )
        self.routes = self.api.add_routes(
            path=names.GRANT_ROUTE,
            methods=[apigwv2.HttpMethod.POST],
            integration=integrations.HttpLambdaIntegration(
                "Grant",
                self.function,
                payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
            ),
            authorizer=self.authorizer,
        )
        # The stage URL ends with "/" ($default stage: the API's root).
        self.url = f"{self.stage.url}{names.GRANT_ROUTE.lstrip('/')}"

    def _user_pool(self) -> tuple[cognito.UserPool, cognito.UserPoolClient]:
        pool = cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=False,  # operators create each tenant's users
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            sign_in_case_sensitive=False,
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            custom_attributes={
                # Immutable: not even an administrator can move a user to another tenant.
                TENANT_ATTRIBUTE: cognito.StringAttribute(
                    min_len=1, max_len=TENANT_MAX_CHARS, mutable=False
                )
            },
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            mfa=cognito.Mfa.OFF,
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            removal_policy=RemovalPolicy.RETAIN,  # the users are not re-creatable
        )
        client = pool.add_client(
            "Client",
            generate_secret=False,  # CLIs and scripts sign in: there is nowhere to keep one
            auth_flows=cognito.AuthFlow(user_password=True, user_srp=True),
            disable_o_auth=True,  # no hosted sign-in pages, no redirects
            id_token_validity=TOKEN_VALIDITY,
            access_token_validity=TOKEN_VALIDITY,
            refresh_token_validity=Duration.days(30),
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
        )
        return pool, client
