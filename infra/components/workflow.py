"""The state machine, loaded inline from workflows/pipeline.asl.json (so cfn-lint sees it) with
the same placeholder keys the embedded runtime fills."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from tasks.workflow_definition import WORKFLOW_FILE


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        substitutions: dict[str, str],
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            # Under /aws/vendedlogs/: log delivery then needs no CloudWatch Logs resource policy
            # entry per log group (the account's policies are capped at 5,120 characters).
            log_group_name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}-pipeline",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment="chute: validate, convert, archive one staged file",
            definition_body=sfn.DefinitionBody.from_string(WORKFLOW_FILE.read_text()),
            definition_substitutions=substitutions,
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
        )
