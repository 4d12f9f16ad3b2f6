"""Scheduled auto-redrive: an EventBridge rule runs the redrive function (tasks/redrive) every few
minutes; it resumes executions whose failure was transient with RedriveExecution, at most N
times each. The alarm on the cap is in Observability."""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.components.functions import TaskFunction
from tasks import names


class AutoRedrive(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ecr_assets.DockerImageAsset,
        state_machine: sfn.StateMachine,
        max_redrives: int,
        every_minutes: int,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        if max_redrives < 1:
            raise ValueError(f"max_redrives={max_redrives}: at least 1 (0 turns it off)")
        if not 1 <= every_minutes <= 24 * 60:
            raise ValueError(f"every_minutes={every_minutes}: choose 1 to 1440")
        self.task = TaskFunction(
            self,
            "RedriveStep",
            step="redrive",
            image=image,
            settings={
                names.ENV_STATE_MACHINE_ARN: state_machine.state_machine_arn,
                names.ENV_MAX_REDRIVES: str(max_redrives),
                names.ENV_REDRIVE_EVERY_MINUTES: str(every_minutes),
            },
            log_retention=log_retention,
        )
        self.function = self.task.function
        role = self.task.role
        role.add_to_principal_policy(
            iam.PolicyStatement(
                # StartExecution: the restart of an execution that ended in a Fail state
                actions=["states:ListExecutions", "states:StartExecution"],
                resources=[state_machine.state_machine_arn],
            )
        )
        # RedriveExecution acts on an execution, so it is granted on the execution ARNs (not on
        # the state machine's, which would allow nothing).
        executions = (
            f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:execution:"
            f"{state_machine.state_machine_name}:*"
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "states:DescribeExecution",
                    "states:GetExecutionHistory",
                    "states:RedriveExecution",
                ],
                resources=[executions],
            )
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"chute: redrive transiently failed executions (at most {max_redrives}x)",
            schedule=events.Schedule.rate(Duration.minutes(every_minutes)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )
