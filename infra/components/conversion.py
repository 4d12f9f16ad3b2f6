"""AWS Batch on Fargate for large files: the same image and conversion code as the Lambda."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from tasks import names


def retry_strategies(strategy: dict[str, Any]) -> list[batch.RetryStrategy]:
    """names.BATCH_RETRY_STRATEGY as CDK objects (the embedded runtime registers the same)."""
    return [
        batch.RetryStrategy.of(
            batch.Action.RETRY if rule["action"] == "RETRY" else batch.Action.EXIT,
            batch.Reason.custom(on_exit_code=rule["onExitCode"]),
        )
        for rule in strategy["evaluateOnExit"]
    ]


class BatchConversion(Construct):
    """Compute environment, job queue and job definition (`python -m batch`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ecr_assets.DockerImageAsset,
        settings: dict[str, str],
        vpc: ec2.IVpc,
        vcpu: float,
        memory_mib: int,
        attempt_timeout_seconds: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "JobSecurityGroup",
            vpc=vpc,
            description="chute Batch jobs: outbound only (S3, ECR, CloudWatch Logs)",
            allow_all_outbound=True,
        )
        self.compute = batch.FargateComputeEnvironment(
            self,
            "Compute",
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_groups=[self.security_group],
            maxv_cpus=64,
        )
        self.queue = batch.JobQueue(
            self,
            "Queue",
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.compute, order=1)
            ],
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="chute Batch job: read staging, write output",
        )
        self.container = batch.EcsFargateContainerDefinition(
            self,
            "Container",
            image=ecs.ContainerImage.from_docker_image_asset(image),
            command=list(names.BATCH_COMMAND),
            cpu=vcpu,
            memory=Size.mebibytes(memory_mib),
            environment=names.function_environment("convert", settings),
            job_role=self.job_role,
            assign_public_ip=True,  # public subnets, no NAT gateway: pull the image, reach S3
            logging=ecs.LogDriver.aws_logs(stream_prefix="chute", log_group=self.log_group),
            readonly_root_filesystem=True,
        )
        self.job_definition = batch.EcsJobDefinition(
            self,
            "JobDefinition",
            container=self.container,
            retry_attempts=int(str(names.BATCH_RETRY_STRATEGY["attempts"])),
            retry_strategies=retry_strategies(dict(names.BATCH_RETRY_STRATEGY)),
            timeout=Duration.seconds(attempt_timeout_seconds),
            propagate_tags=True,
        )
