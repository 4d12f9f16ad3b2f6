"""The local stack: the resources the CDK stack deploys (buckets, queue and dead-letter queue,
the staging bucket's notification, roles, the user pool, the functions with the settings the
stack gives them, the Batch queue and job definition, the completion topic and event bus, the
state machine from the same workflow file), created on the embedded endpoint by ``chute up`` /
``chute run``.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chute.ops.resources import ACCOUNT_ID, Resources
from tasks import names
from tasks.batch_sizing import BatchSizing
from tasks.workflow_definition import WORKFLOW_FILE, substitute


class StackSettings(Protocol):
    """What the local stack takes of the runtime's settings (embedded.LocalSettings)."""

    region: str
    suffixes: tuple[str, ...]
    large_file_threshold_bytes: int
    batch_timeout_seconds: int
    visibility_timeout_seconds: int
    max_receive_count: int
    batch_sizing: BatchSizing
    fanout_threshold_bytes: int
    fanout_part_bytes: int
    fanout_max_concurrency: int


REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_FILE = REPO_ROOT / "contracts" / "contracts.toml"


def queue_arn(region: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{name}"


def load_definition(substitutions: dict[str, str]) -> str:
    """The workflow file with its ${Placeholders} filled (what CFN DefinitionSubstitutions does)."""
    return substitute(WORKFLOW_FILE.read_text(encoding="utf-8"), substitutions)


@dataclass(frozen=True)
class Created:
    """What the runtime needs to know of what was created (the grant API's identity provider)."""

    user_pool_id: str
    client_id: str


@dataclass(frozen=True)
class LocalStack:
    """Creates the stack's resources through ``client`` (a boto3 client factory on the
    endpoint)."""

    client: Callable[[str], Any]
    resources: Resources
    settings: StackSettings

    def substitutions(self) -> dict[str, str]:
        return self.resources.substitutions(
            large_file_threshold_bytes=self.settings.large_file_threshold_bytes,
            batch_timeout_seconds=self.settings.batch_timeout_seconds,
            fanout_threshold_bytes=self.settings.fanout_threshold_bytes,
            fanout_max_concurrency=self.settings.fanout_max_concurrency,
        )

    def create(self) -> Created:
        """Every resource of the stack, and the user pool's ids."""
        r = self.resources
        s3 = self.client("s3")
        for bucket in (r.staging_bucket, r.output_bucket, r.archive_bucket, r.quarantine_bucket):
            s3.create_bucket(Bucket=bucket)
        for versioned in (r.staging_bucket, r.archive_bucket):  # as the stack has them
            s3.put_bucket_versioning(
                Bucket=versioned, VersioningConfiguration={"Status": "Enabled"}
            )

        self._create_queues()
        s3.put_bucket_notification_configuration(
            Bucket=r.staging_bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "Id": "staging-object-created",
                        "QueueArn": queue_arn(self.settings.region, r.queue_name),
                        "Events": ["s3:ObjectCreated:*"],
                    }
                ]
            },
        )

        iam = self.client("iam")
        iam.create_role(
            RoleName=f"{r.prefix}-local",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )
        iam.create_role(
            RoleName=r.upload_role_name,
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
            MaxSessionDuration=3600,
        )
        created = self._create_user_pool()
        values = {
            **names.pipeline_settings(
                output_bucket=r.output_bucket,
                archive_bucket=r.archive_bucket,
                quarantine_bucket=r.quarantine_bucket,
                contracts_file=str(CONTRACTS_FILE),
                suffixes=tuple(self.settings.suffixes),
                batch_sizing=self.settings.batch_sizing.to_setting(),
                fanout_part_bytes=self.settings.fanout_part_bytes,
            ),
            names.ENV_STATE_MACHINE_ARN: r.state_machine_arn,
            names.ENV_STAGING_BUCKET: r.staging_bucket,
            names.ENV_UPLOAD_ROLE_ARN: r.upload_role_arn,
            names.ENV_GRANT_EXPIRES_SECONDS: str(names.DEFAULT_GRANT_EXPIRES_SECONDS),
            names.ENV_TENANT_CLAIM: names.DEFAULT_TENANT_CLAIM,
        }
        lam = self.client("lambda")
        for step in (*names.TASK_STEPS, "grant"):
            self._create_function(lam, step, values)
        self._create_batch(values)
        self.client("sns").create_topic(Name=r.completion_topic_name)
        self._create_event_bus()
        sfn = self.client("stepfunctions")
        sfn.create_state_machine(
            name=r.state_machine_name,
            definition=load_definition(self.substitutions()),
            roleArn=r.role_arn,
            type="STANDARD",
        )
        self._create_function(lam, "trigger", values)
        return created

    def _create_queues(self) -> None:
        """The staging queue (events of uploads) and its dead-letter queue."""
        r = self.resources
        sqs = self.client("sqs")
        sqs.create_queue(QueueName=r.dlq_name)
        redrive = {
            "deadLetterTargetArn": queue_arn(self.settings.region, r.dlq_name),
            "maxReceiveCount": self.settings.max_receive_count,
        }
        sqs.create_queue(
            QueueName=r.queue_name,
            Attributes={
                "VisibilityTimeout": str(self.settings.visibility_timeout_seconds),
                "RedrivePolicy": json.dumps(redrive),
            },
        )

    def _create_event_bus(self) -> None:
        """The completion events' bus, and the rule that copies every chute event into a log
        group (what `chute watch` and the console read), as the stack has them."""
        r = self.resources
        self.client("events").create_event_bus(Name=r.event_bus_name)
        self.client("logs").create_log_group(logGroupName=r.events_log_group)
        events = self.client("events")
        events.put_rule(
            Name=f"{r.prefix}-events-to-logs",
            EventBusName=r.event_bus_name,
            EventPattern=json.dumps({"source": [names.EVENT_SOURCE]}),
        )
        events.put_targets(
            Rule=f"{r.prefix}-events-to-logs",
            EventBusName=r.event_bus_name,
            Targets=[
                {
                    "Id": "log",
                    "Arn": f"arn:aws:logs:{self.settings.region}:{r.account}:log-group:"
                    f"{r.events_log_group}",
                }
            ],
        )

    def _create_user_pool(self) -> Created:
        """The identity provider of the grant API, as the stack creates it: users carry an
        immutable ``custom:tenant``; the app client signs in with a password (no secret)."""
        r = self.resources
        cognito = self.client("cognito-idp")
        pool = cognito.create_user_pool(
            PoolName=r.user_pool_name,
            Schema=[
                {
                    "Name": "tenant",
                    "AttributeDataType": "String",
                    "Mutable": False,
                    "StringAttributeConstraints": {"MinLength": "1", "MaxLength": "64"},
                }
            ],
            AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
        )["UserPool"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool["Id"],
            ClientName=r.user_pool_client_name,
            ExplicitAuthFlows=[
                "ALLOW_USER_PASSWORD_AUTH",
                "ALLOW_USER_SRP_AUTH",
                "ALLOW_REFRESH_TOKEN_AUTH",
            ],
        )["UserPoolClient"]["ClientId"]
        return Created(user_pool_id=pool["Id"], client_id=client_id)

    def _create_function(self, lam: Any, step: str, values: dict[str, str]) -> None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            archive.writestr("README.txt", "code runs from the chute project (embedded runtime)")
        env = names.function_environment(step, values)
        lam.create_function(
            FunctionName=self.resources.function_name(step),
            Runtime=f"python{sys.version_info.major}.{sys.version_info.minor}",
            Role=self.resources.role_arn,
            Handler=names.HANDLERS[step],
            Code={"ZipFile": buf.getvalue()},
            Timeout=names.FUNCTION_TIMEOUT_SECONDS[step],
            MemorySize=names.FUNCTION_MEMORY_MB[step],
            Environment={"Variables": env},
        )

    def _create_batch(self, values: dict[str, str]) -> None:
        r = self.resources
        batch = self.client("batch")
        env_arn = batch.create_compute_environment(
            computeEnvironmentName=f"{r.prefix}-local",
            type="UNMANAGED",
            state="ENABLED",
            serviceRole=r.role_arn,
        )["computeEnvironmentArn"]
        batch.create_job_queue(
            jobQueueName=r.job_queue,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env_arn}],
        )
        env = [
            {"name": n, "value": v}
            for n, v in names.function_environment("convert", values).items()
        ]
        batch.register_job_definition(
            jobDefinitionName=r.job_definition,
            type="container",
            containerProperties={
                "image": "chute-batch:local",
                "command": list(names.BATCH_COMMAND),
                "environment": env,
                "resourceRequirements": [
                    {"type": "VCPU", "value": "2"},
                    {"type": "MEMORY", "value": "4096"},
                ],
            },
            retryStrategy=names.BATCH_RETRY_STRATEGY,
            timeout={"attemptDurationSeconds": self.settings.batch_timeout_seconds},
        )
