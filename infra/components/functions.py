"""The Lambda functions: the handlers from tasks/, one container image for all of them (and for
the Batch job), each function with only the settings names.FUNCTION_SETTINGS gives it."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from tasks import names

# The image's default command is the Batch job; Lambda runs the runtime interface client instead.
LAMBDA_ENTRYPOINT = ["python", "-m", "awslambdaric"]


class TaskFunction(Construct):
    """One pipeline step as a Lambda function running the shared image."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        step: str,
        image: ecr_assets.DockerImageAsset,
        settings: dict[str, str],
        log_retention: logs.RetentionDays,
        reserved_concurrency: int | None = None,
    ) -> None:
        """``reserved_concurrency``: set aside for this function and its upper limit (None: it
        shares the account's unreserved concurrency, without a limit of its own)."""
        super().__init__(scope, construct_id)
        environment = names.function_environment(step, settings)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        # Its own role instead of AWSLambdaBasicExecutionRole: logs go to this group only.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"chute {step} function",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            description=f"chute {step} step ({names.HANDLERS[step]})",
            code=lambda_.DockerImageCode.from_ecr(
                repository=image.repository,
                tag_or_digest=image.image_tag,
                entrypoint=LAMBDA_ENTRYPOINT,
                cmd=[names.HANDLERS[step]],
            ),
            architecture=lambda_.Architecture.X86_64,
            timeout=Duration.seconds(names.FUNCTION_TIMEOUT_SECONDS[step]),
            memory_size=names.FUNCTION_MEMORY_MB[step],
            environment=environment,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            role=self.role,
            reserved_concurrent_executions=reserved_concurrency,
        )
