"""ChuteStack: the whole pipeline in one stack of purpose-named constructs."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import ArnFormat, Aws, CfnOutput, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.components.access import (
    CHECK,
    DELETE,
    DELETE_CURRENT,
    LIST_PARTS,
    READ,
    WRITE,
    allow_objects,
)
from infra.components.conversion import BatchConversion
from infra.components.events import CompletionEvents
from infra.components.functions import TaskFunction
from infra.components.grants import UploadGrants
from infra.components.ingest import Ingest
from infra.components.observability import Observability
from infra.components.redrive import AutoRedrive
from infra.components.storage import Storage
from infra.components.workflow import Workflow
from infra.config import ChuteProps
from tasks import names
from tasks.formats import OUTPUT_FORMATS, keys

REPO_ROOT = Path(__file__).resolve().parents[1]


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention(days: int) -> logs.RetentionDays:
    if days not in _RETENTION:
        raise ValueError(f"log retention of {days} days: choose one of {sorted(_RETENTION)}")
    return _RETENTION[days]


class ChuteStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, props: ChuteProps, **kw: object):
        super().__init__(scope, construct_id, **kw)  # type: ignore[arg-type]
        self.props = props
        keep = retention(props.log_retention_days)
        Tags.of(self).add("project", "chute")
        for key, value in props.extra_tags.items():
            Tags.of(self).add(key, value)

        self.storage = Storage(
            self,
            "Storage",
            archive_transition_days=props.archive_transition_days,
            archive_expiration_days=props.archive_expiration_days,
            archive_noncurrent_days=props.archive_noncurrent_days,
            staging_noncurrent_days=props.staging_noncurrent_days,
            upload_origins=props.upload_origins,
        )
        self.key = kms.Key(
            self,
            "TopicKey",
            description="chute: encrypts the completion and alert topics",
            enable_key_rotation=True,
        )
        self.completions = sns.Topic(
            self,
            "Completions",
            display_name="chute: one message per finished file",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.events = CompletionEvents(
            self,
            "CompletionEvents",
            bus_name=props.event_bus_name or f"{self.stack_name}-events",
            log_retention=keep,
        )
        # One image for every function and the Batch job (built by `cdk deploy`, not by synth).
        self.image = ecr_assets.DockerImageAsset(
            self, "Image", directory=str(REPO_ROOT), platform=ecr_assets.Platform.LINUX_AMD64
        )

        s = self.storage
        settings = names.pipeline_settings(
            output_bucket=s.output.bucket_name,
            archive_bucket=s.archive.bucket_name,
            quarantine_bucket=s.quarantine.bucket_name,
            contracts_file=names.CONTRACTS_FILE_IN_IMAGE,
            suffixes=tuple(props.suffixes),
            prefix=props.key_prefix,
            max_file_bytes=props.max_file_bytes,
            max_decompressed_bytes=props.max_decompressed_bytes,
            max_decompression_ratio=props.max_decompression_ratio,
            output_formats=",".join(props.output_formats),
            batch_sizing=props.batch_sizing.to_setting(),
            fanout_part_bytes=props.fanout_part_bytes,
        )
        # A burst of uploads converts at most this many files in Lambda at once; the others wait
        # in the workflow's Retry on Lambda.TooManyRequestsException (0: no limit).
        reserved = {"convert": props.convert_max_concurrency or None}
        self.steps = {
            step: TaskFunction(
                self,
                f"{step.capitalize()}Step",
                step=step,
                image=self.image,
                settings=settings,
                log_retention=keep,
                reserved_concurrency=reserved.get(step),
            )
            for step in names.TASK_STEPS
        }
        self.functions = {step: task.function for step, task in self.steps.items()}
        fn = self.functions
        allow_objects(fn["validate"], s.staging, READ)
        self._allow_conversion(fn["convert"])
        self._allow_fanout(fn["fanout"])
        # The move: a conditional multipart copy of the staged version into the destination,
        # then a conditional delete of the staged key (If-Match) and of the version by id.
        for step, bucket in (("archive", s.archive), ("quarantine", s.quarantine)):
            allow_objects(fn[step], s.staging, READ, DELETE)
            allow_objects(fn[step], bucket, READ, WRITE, LIST_PARTS)
        # what a rejecting Batch job left for the report (keys.batch_failure_key)
        failures = f"{keys.BATCH_FAILURES_PREFIX}*"
        allow_objects(fn["quarantine"], s.output, READ, DELETE, keys=failures)

        self.vpc = self._vpc(props)
        self.conversion = BatchConversion(
            self,
            "BatchConversion",
            image=self.image,
            settings=settings,
            vpc=self.vpc,
            vcpu=props.batch_min_vcpu,
            memory_mib=props.batch_min_vcpu * props.batch_memory_per_vcpu_mib,
            attempt_timeout_seconds=props.batch_timeout_seconds,
            log_retention=keep,
        )
        self._allow_conversion(self.conversion.job_role)

        self.workflow = Workflow(
            self, "Workflow", substitutions=self.substitutions(), log_retention=keep
        )
        machine = self.workflow.state_machine
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[fn[step].function_arn for step in names.TASK_STEPS],
            )
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.completions.topic_arn])
        )
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.key.key_arn]
            )
        )
        self.events.bus.grant_put_events_to(machine)
        # The fan-out's Distributed Map reads each round's manifest (ItemReader, s3:getObject)
        machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[s.output.arn_for_objects(keys.FANOUT_MANIFESTS)],
            )
        )
        self._allow_batch_sync(machine.role)
        self._allow_map_children(machine)

        self.ingest = Ingest(self, "Ingest", staging=s.staging, key_prefix=props.key_prefix)
        self.steps["trigger"] = TaskFunction(
            self,
            "TriggerStep",
            step="trigger",
            image=self.image,
            settings={**settings, names.ENV_STATE_MACHINE_ARN: machine.state_machine_arn},
            log_retention=keep,
        )
        self.trigger = self.functions["trigger"] = self.steps["trigger"].function
        machine.grant_start_execution(self.trigger)
        self.ingest.connect(self.trigger, max_concurrency=props.trigger_max_concurrency)

        self.grants = UploadGrants(
            self,
            "Grants",
            image=self.image,
            settings=settings,
            staging=s.staging,
            key_prefix=props.key_prefix,
            log_retention=keep,
            jwt_issuer=props.grant_jwt_issuer,
            jwt_audience=props.grant_jwt_audience,
            tenant_claim=props.grant_tenant_claim,
            expires_seconds=props.grant_expires_seconds,
            allowed_origins=props.upload_origins,
            reserved_concurrency=props.grant_reserved_concurrency or None,
        )
        self.steps["grant"] = self.grants.task
        self.functions["grant"] = self.grants.function

        self.redrive: AutoRedrive | None = None
        if props.auto_redrive_max:
            self.redrive = AutoRedrive(
                self,
                "AutoRedrive",
                image=self.image,
                state_machine=machine,
                max_redrives=props.auto_redrive_max,
                every_minutes=props.auto_redrive_every_minutes,
                log_retention=keep,
            )
            self.steps["redrive"] = self.redrive.task
            self.functions["redrive"] = self.redrive.function

        self.operators = self._operators_policy()
        # Last: it watches everything above.
        self.observability = Observability(
            self,
            "Observability",
            state_machine=machine,
            functions=self.functions,
            grant_api=self.grants.api,
            auto_redrive=self.redrive is not None,
            dead_letter_queue=self.ingest.dlq,
            events_queue=self.ingest.queue,
            key=self.key,
            alert_email=props.alert_email,
            no_success_hours=props.no_success_alarm_hours,
        )
        self._outputs()

    # --- pieces -------------------------------------------------------------------------------
    def substitutions(self) -> dict[str, str]:
        """Values for every ${Placeholder} of the workflow file (keys: names.PLACEHOLDERS)."""
        return names.workflow_substitutions(
            function_arns={step: fn.function_arn for step, fn in self.functions.items()},
            batch_job_queue_arn=self.conversion.queue.job_queue_arn,
            batch_job_definition_arn=self.conversion.job_definition.job_definition_arn,
            large_file_threshold_bytes=self.props.large_file_threshold_bytes,
            batch_attempt_seconds=self.props.batch_timeout_seconds,
            completion_topic_arn=self.completions.topic_arn,
            completion_event_bus_arn=self.events.bus.event_bus_arn,
            fanout_threshold_bytes=self.props.fanout_threshold_bytes,
            fanout_max_concurrency=self.props.fanout_max_concurrency,
        )

    def _vpc(self, props: ChuteProps) -> ec2.IVpc:
        if props.vpc_id:
            return ec2.Vpc.from_lookup(self, "Vpc", vpc_id=props.vpc_id)
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)
            ],
        )
        vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(self, "FlowLogs", retention=retention(props.log_retention_days))
            ),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3)
        return vpc

    def _allow_conversion(self, grantee: iam.IGrantable) -> None:
        """The convert function and the Batch job: read the staged version and check it is
        still the key's current one (HEAD without a version id); publish outputs with
        conditional writes (HEAD, If-None-Match/If-Match) and delete an older version's output
        the newer one doesn't have (e.g. its ``<key>.rejected.jsonl``)."""
        s = self.storage
        allow_objects(grantee, s.staging, READ)
        allow_objects(grantee, s.output, CHECK, WRITE, DELETE_CURRENT)

    def _allow_fanout(self, grantee: iam.IGrantable) -> None:
        """The fan-out function: reads the staged file (under the key prefix), keeps its state,
        manifests and verdict and joins the parts' objects under keys.FANOUT_PREFIX (written by
        the convert function), and publishes the joined outputs like a conversion: only keys
        ending in an output format's suffix (``<base>.jsonl`` also covers the rejected rows'
        ``<base>.rejected.jsonl``), never another object of the output bucket."""
        s = self.storage
        prefix = self.props.key_prefix
        allow_objects(grantee, s.staging, READ, keys=f"{prefix}*")
        allow_objects(
            grantee, s.output, CHECK, WRITE, DELETE_CURRENT, keys=f"{keys.FANOUT_PREFIX}*"
        )
        for output_format in OUTPUT_FORMATS:
            allow_objects(
                grantee, s.output, CHECK, WRITE, DELETE_CURRENT, keys=f"{prefix}*.{output_format}"
            )

    def _allow_map_children(self, machine: sfn.StateMachine) -> None:
        """The fan-out's Distributed Map runs its items as child executions of this machine. A
        policy of its own (not the role's default policy, which the machine depends on): it
        names the machine, so in the default policy it would be a circular dependency."""
        children = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{machine.state_machine_name}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.fanout_children = iam.Policy(
            self,
            "FanOutChildren",
            roles=[machine.role],
            statements=[
                iam.PolicyStatement(
                    actions=["states:StartExecution"], resources=[machine.state_machine_arn]
                ),
                iam.PolicyStatement(
                    actions=["states:DescribeExecution", "states:StopExecution"],
                    resources=[children],
                ),
            ],
        )

    def _allow_batch_sync(self, role: iam.IRole) -> None:
        """What `batch:submitJob.sync` needs: submit/describe/terminate, and the managed
        EventBridge rule Step Functions uses to learn when the job ends."""
        c = self.conversion
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["batch:SubmitJob"],
                resources=[c.queue.job_queue_arn, c.job_definition.job_definition_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["batch:DescribeJobs", "batch:TerminateJob"], resources=["*"]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:rule/"
                    "StepFunctionsGetEventsForBatchJobsRule"
                ],
            )
        )

    def _operators_policy(self) -> iam.ManagedPolicy:
        """For the people who run chute: monitor, upload (also as the upload role, for
        `chute grant --credentials`), rerun (redrive), requeue."""
        s = self.storage
        machine = self.workflow.state_machine
        executions = (
            f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:execution:"
            f"{machine.state_machine_name}:*"
        )
        policy = iam.ManagedPolicy(
            self,
            "OperatorsPolicy",
            description="chute operators: monitor executions, upload, rerun and requeue files",
            statements=[
                iam.PolicyStatement(
                    actions=[
                        "states:DescribeStateMachine",
                        "states:ListExecutions",
                        "states:StartExecution",
                    ],
                    resources=[machine.state_machine_arn],
                ),
                iam.PolicyStatement(
                    actions=[
                        "states:DescribeExecution",
                        "states:GetExecutionHistory",
                        "states:RedriveExecution",
                        "states:StopExecution",
                    ],
                    resources=[executions],
                ),
                iam.PolicyStatement(
                    # neither supports resource-level permissions
                    actions=["batch:DescribeJobs", "cloudwatch:GetMetricData"],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    actions=["logs:FilterLogEvents", "logs:GetLogEvents"],
                    resources=[g.log_group_arn for g in self.log_groups()],
                ),
                iam.PolicyStatement(
                    actions=["cloudformation:DescribeStacks"], resources=[self.stack_id]
                ),
                iam.PolicyStatement(
                    actions=["sts:AssumeRole"], resources=[self.grants.upload_role.role_arn]
                ),
            ],
        )
        allow_objects(policy, s.staging, READ, WRITE)  # upload, requeue
        allow_objects(policy, s.output, READ)
        allow_objects(policy, s.archive, READ)
        allow_objects(policy, s.quarantine, READ, DELETE)  # requeue moves files out
        return policy

    def log_groups(self) -> list[logs.ILogGroup]:
        return [
            *(task.log_group for task in self.steps.values()),
            self.conversion.log_group,
            self.workflow.log_group,
            self.grants.access_logs,
            self.events.log_group,
        ]

    def _outputs(self) -> None:
        s = self.storage
        machine = self.workflow.state_machine
        region = Aws.REGION
        values = {
            "StagingBucket": s.staging.bucket_name,
            "OutputBucket": s.output.bucket_name,
            "ArchiveBucket": s.archive.bucket_name,
            "QuarantineBucket": s.quarantine.bucket_name,
            "StateMachineArn": machine.state_machine_arn,
            "CompletionTopicArn": self.completions.topic_arn,
            "EventBusArn": self.events.bus.event_bus_arn,
            "EventsLogGroup": self.events.log_group.log_group_name,
            "DeadLetterQueueUrl": self.ingest.dlq.queue_url,
            "OperatorsPolicyArn": self.operators.managed_policy_arn,
            "StateMachineConsoleUrl": (
                f"https://{region}.console.aws.amazon.com/states/home?region={region}"
                f"#/statemachines/view/{machine.state_machine_arn}"
            ),
            "AlertTopicArn": self.observability.alert_topic.topic_arn,
            "DashboardConsoleUrl": (
                f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
                f"#dashboards/dashboard/{self.observability.dashboard_name}"
            ),
            "GrantApiUrl": self.grants.url,
            "UploadRoleArn": self.grants.upload_role.role_arn,
        }
        if self.grants.user_pool is not None and self.grants.client is not None:
            values["UserPoolId"] = self.grants.user_pool.user_pool_id
            values["UserPoolClientId"] = self.grants.client.user_pool_client_id
        for name, value in values.items():
            CfnOutput(self, name, value=value)
