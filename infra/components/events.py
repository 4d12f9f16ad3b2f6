"""The completion events' bus (docs/events.md): the workflow's Announce* states put one event per
file outcome on it (the ``events:putEvents`` task integration), and a rule copies every chute
event into a log group, which `chute watch` and the web console read."""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from tasks import names


class CompletionEvents(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus_name: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.bus = events.EventBus(self, "Bus", event_bus_name=bus_name)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/events/{bus_name}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # A plain resource policy (CDK's CloudWatchLogGroup target would install it with a
        # custom-resource Lambda): EventBridge may write into this log group only.
        logs.ResourcePolicy(
            self,
            "LogsPolicy",
            policy_statements=[
                iam.PolicyStatement(
                    principals=[
                        iam.ServicePrincipal("events.amazonaws.com"),
                        iam.ServicePrincipal("delivery.logs.amazonaws.com"),
                    ],
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.log_group.log_group_arn],
                )
            ],
        )
        log_group_target = stack.format_arn(
            service="logs",
            resource="log-group",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
            resource_name=self.log_group.log_group_name,
        )
        events.CfnRule(
            self,
            "ToLogs",
            description="chute: every completion event, into the log group chute watch reads",
            event_bus_name=self.bus.event_bus_name,
            event_pattern={"source": [names.EVENT_SOURCE]},
            state="ENABLED",
            targets=[events.CfnRule.TargetProperty(id="log", arn=log_group_target)],
        )
