"""Where the pipeline runs: the embedded runtime (``--endpoint-url``) or an AWS stack (profile,
region and stack name; the stack's outputs name the resources). Every operations command goes
through this one object, so the same code path serves both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from tasks.adapters.signer import AwsSigner

DEFAULT_STACK = "Chute"


class DeploymentError(Exception):
    """The deployment can't be reached or found; the message says what to do."""


@dataclass
class Deployment:
    sfn: Any
    s3: Any
    state_machine_arn: str
    staging_bucket: str
    quarantine_bucket: str
    output_bucket: str
    region: str
    on_aws: bool
    upload_role_arn: str | None = None
    session: Any = None
    """boto3 Session with the operator's credentials (signs upload grants)."""
    endpoint_url: str | None = None

    def signer(self) -> AwsSigner:
        return AwsSigner(session=self.session, endpoint_url=self.endpoint_url)

    def console_url(self, execution_arn: str) -> str | None:
        if not self.on_aws:
            return None
        r = self.region
        return (
            f"https://{r}.console.aws.amazon.com/states/home?region={r}"
            f"#/v2/executions/details/{execution_arn}"
        )


def connect(
    *,
    endpoint_url: str | None = None,
    stack: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    session: Any | None = None,
) -> Deployment:
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    if endpoint_url:
        from chute.local.embedded import DEFAULT_REGION, Resources  # naming only, no moto

        resources = Resources(prefix="chute", region=region or DEFAULT_REGION)

        def client(name: str) -> Any:
            return boto3.client(
                name,
                endpoint_url=endpoint_url,
                region_name=resources.region,
                aws_access_key_id="chute",
                aws_secret_access_key="chute",
                config=config,
            )

        deployment = Deployment(
            sfn=client("stepfunctions"),
            s3=client("s3"),
            state_machine_arn=resources.state_machine_arn,
            staging_bucket=resources.staging_bucket,
            quarantine_bucket=resources.quarantine_bucket,
            output_bucket=resources.output_bucket,
            region=resources.region,
            on_aws=False,
            upload_role_arn=resources.upload_role_arn,
            session=boto3.Session(
                aws_access_key_id="chute",
                aws_secret_access_key="chute",
                region_name=resources.region,
            ),
            endpoint_url=endpoint_url,
        )
        _check_reachable(deployment, f"the endpoint {endpoint_url}")
        return deployment
    session = session or boto3.Session(profile_name=profile, region_name=region)
    name = stack or DEFAULT_STACK
    try:
        cfn = session.client("cloudformation", config=config)
        described = cfn.describe_stacks(StackName=name)["Stacks"][0]
    except NoCredentialsError as exc:
        raise DeploymentError(
            "no AWS credentials: configure a profile (--profile) or pass --endpoint-url for the "
            "embedded runtime"
        ) from exc
    except ClientError as exc:
        raise DeploymentError(f"stack {name!r}: {exc.response['Error']['Message']}") from exc
    except BotoCoreError as exc:
        raise DeploymentError(f"cannot reach AWS CloudFormation: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = [
        k
        for k in ("StateMachineArn", "StagingBucket", "QuarantineBucket", "OutputBucket")
        if k not in outputs
    ]
    if missing:
        raise DeploymentError(f"stack {name!r} has no output {', '.join(missing)}: is it chute?")
    return Deployment(
        sfn=session.client("stepfunctions", config=config),
        s3=session.client("s3", config=config),
        state_machine_arn=outputs["StateMachineArn"],
        staging_bucket=outputs["StagingBucket"],
        quarantine_bucket=outputs["QuarantineBucket"],
        output_bucket=outputs["OutputBucket"],
        region=session.region_name or outputs["StateMachineArn"].split(":")[3],
        on_aws=True,
        upload_role_arn=outputs.get("UploadRoleArn"),
        session=session,
    )


def _check_reachable(deployment: Deployment, what: str) -> None:
    try:
        deployment.sfn.describe_state_machine(stateMachineArn=deployment.state_machine_arn)
    except BotoCoreError as exc:
        raise DeploymentError(f"cannot reach {what}: is `chute up` running? ({exc})") from exc
    except ClientError as exc:
        raise DeploymentError(
            f"{what} has no chute state machine: {exc.response['Error']['Message']}"
        ) from exc
