"""Where the pipeline runs: the embedded runtime (``--endpoint-url``) or an AWS stack (profile,
region and stack name; the stack's outputs name the resources). Every command that talks to a
pipeline goes through this one object, so the same code path serves both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, SSLError

from chute.ops.resources import DEFAULT_REGION, Resources
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
    events_log_group: str | None = None
    """The log group of the completion events (chute.ops.events)."""
    _logs: Any = None

    @property
    def logs(self) -> Any:
        """CloudWatch Logs client, made at first use (commands that don't read events don't
        pay for it)."""
        if self._logs is None:
            self._logs = client(
                "logs", endpoint_url=self.endpoint_url, region=self.region, session=self.session
            )
        return self._logs

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


LOCAL_KEY = "chute"
"""Access key id and secret of clients of the embedded runtime (any value works there)."""


def client(
    service: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    session: Any | None = None,
    max_attempts: int = 5,
) -> Any:
    """The one boto3 client factory: against an endpoint (the embedded runtime, local
    credentials) or from the operator's session (AWS). Standard retry mode."""
    config = Config(retries={"mode": "standard", "max_attempts": max_attempts})
    if endpoint_url is None:
        return (session or boto3.Session(region_name=region)).client(service, config=config)
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=LOCAL_KEY,
        aws_secret_access_key=LOCAL_KEY,
        config=config,
    )


def connect(
    *,
    endpoint_url: str | None = None,
    stack: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    session: Any | None = None,
) -> Deployment:
    if endpoint_url:
        resources = Resources(prefix="chute", region=region or DEFAULT_REGION)
        deployment = Deployment(
            sfn=client("stepfunctions", endpoint_url=endpoint_url, region=resources.region),
            s3=client("s3", endpoint_url=endpoint_url, region=resources.region),
            state_machine_arn=resources.state_machine_arn,
            staging_bucket=resources.staging_bucket,
            quarantine_bucket=resources.quarantine_bucket,
            output_bucket=resources.output_bucket,
            region=resources.region,
            on_aws=False,
            upload_role_arn=resources.upload_role_arn,
            session=boto3.Session(
                aws_access_key_id=LOCAL_KEY,
                aws_secret_access_key=LOCAL_KEY,
                region_name=resources.region,
            ),
            endpoint_url=endpoint_url,
            events_log_group=resources.events_log_group,
        )
        _check_reachable(deployment, f"the endpoint {endpoint_url}")
        return deployment
    session = session or boto3.Session(profile_name=profile, region_name=region)
    name = stack or DEFAULT_STACK
    try:
        cfn = client("cloudformation", session=session)
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
        sfn=client("stepfunctions", session=session),
        s3=client("s3", session=session),
        state_machine_arn=outputs["StateMachineArn"],
        staging_bucket=outputs["StagingBucket"],
        quarantine_bucket=outputs["QuarantineBucket"],
        output_bucket=outputs["OutputBucket"],
        region=session.region_name or outputs["StateMachineArn"].split(":")[3],
        on_aws=True,
        upload_role_arn=outputs.get("UploadRoleArn"),
        session=session,
        events_log_group=outputs.get("EventsLogGroup"),
    )


def _check_reachable(deployment: Deployment, what: str) -> None:
    try:
        deployment.sfn.describe_state_machine(stateMachineArn=deployment.state_machine_arn)
    except SSLError as exc:
        plain = (deployment.endpoint_url or "").replace("https://", "http://", 1)
        raise DeploymentError(
            f"{what} does not speak https: the embedded runtime serves plain http ({plain})"
        ) from exc
    except BotoCoreError as exc:
        raise DeploymentError(f"cannot reach {what}: is `chute up` running? ({exc})") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if str(error.get("Code", "")).isdigit():  # an HTTP status, not an AWS error: not AWS
            raise DeploymentError(
                f"{what} answers, but not as an AWS endpoint (HTTP {error.get('Code')}): is it"
                " the web console's port? `chute up` prints its AWS endpoint first (`chute env`"
                " shows it)"
            ) from exc
        raise DeploymentError(f"{what} has no chute state machine: {error.get('Message')}") from exc
