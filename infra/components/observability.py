"""Alarms that page operators, and one dashboard that shows the pipeline end to end.

Every alarm notifies one SNS topic (``alert_topic``; an email subscription when configured).
The topic is encrypted with the stack's customer-managed key: the AWS-managed ``alias/aws/sns``
key cannot be used, CloudWatch alarms are not allowed to use it. The key policy and the topic
policy both let CloudWatch alarms publish (the topic policy replaces SNS's default one, which
would otherwise have allowed it).

Metric names are CloudWatch's own: a misspelt name is not an error anywhere, it is a metric
that never has data and an alarm that never fires (tests/infra/test_observability.py keeps an
allowlist of the real names).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from tasks import names

# The Batch task's Resource in workflows/pipeline.asl.json: Step Functions publishes its
# ServiceIntegrations* metrics with this value as the ServiceIntegrationResourceArn dimension.
BATCH_INTEGRATION_ARN = "arn:aws:states:::batch:submitJob.sync"
STATES = "AWS/States"
PERIOD = Duration.minutes(5)
CLOUDWATCH = "cloudwatch.amazonaws.com"
AT_LEAST = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
ABOVE = cw.ComparisonOperator.GREATER_THAN_THRESHOLD


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        functions: Mapping[str, lambda_.IFunction],
        dead_letter_queue: sqs.IQueue,
        events_queue: sqs.IQueue,
        key: kms.IKey,
        alert_email: str | None,
        no_success_hours: int,
        grant_api: apigwv2.IHttpApi | None = None,
        auto_redrive: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        if not 1 <= no_success_hours <= 24:
            # An alarm evaluates at most one day of data, and a period over an hour must be a
            # whole number of hours.
            raise ValueError(f"no_success_hours={no_success_hours}: choose 1 to 24 hours")
        if "trigger" not in functions:
            raise ValueError("functions: the trigger function is required (its errors alarm)")
        self._machine = state_machine
        self._functions = dict(functions)
        self._dlq = dead_letter_queue
        self._events = events_queue
        self._grant_api = grant_api
        self._auto_redrive = auto_redrive
        self._prefix = Stack.of(self).stack_name
        self.dashboard_name = f"chute-{self._prefix}"

        self.alert_topic = self._alert_topic(key, alert_email)
        self.alarms = self._alarms(no_success_hours)
        action = cw_actions.SnsAction(self.alert_topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.dashboard_name,
            default_interval=Duration.days(1),
            widgets=self._widgets(),
        )

    # --- alerting -------------------------------------------------------------------------------
    def _alert_topic(self, key: kms.IKey, alert_email: str | None) -> sns.Topic:
        topic = sns.Topic(
            self,
            "Alerts",
            display_name="chute alerts",
            master_key=key,
            enforce_ssl=True,
        )
        granted = key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToUseTheKey",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        if not granted.statement_added:
            raise ValueError("key: its policy cannot be changed, alarms could not publish")
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisAccountToPublish",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": (
                            f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
                        )
                    },
                },
            )
        )
        if alert_email:
            topic.add_subscription(subscriptions.EmailSubscription(alert_email))
        return topic

    def _alarms(self, no_success_hours: int) -> list[cw.Alarm]:
        machine = self._machine
        executions = {
            "ExecutionsFailed": (
                machine.metric_failed(period=PERIOD, statistic="Sum"),
                "an execution failed: a file was rejected (quarantined), found stale, or failed "
                "after retries (still in staging, rerunnable)",
            ),
            "ExecutionsTimedOut": (
                machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                "an execution timed out; its file is still in staging",
            ),
            "ExecutionsAborted": (
                machine.metric_aborted(period=PERIOD, statistic="Sum"),
                "an execution was stopped; its file may still be in staging",
            ),
            "ExecutionThrottled": (
                machine.metric_throttled(period=PERIOD, statistic="Sum"),
                "Step Functions throttled state transitions of the pipeline",
            ),
        }
        alarms = [
            self._alarm(name, metric, description, threshold=1)
            for name, (metric, description) in executions.items()
        ]
        alarms.append(
            self._alarm(
                "DeadLetterQueueNotEmpty",
                self._dlq.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                "staging events the trigger could not start an execution for are in the "
                "dead-letter queue; fix the cause, then redrive the queue",
                threshold=0,
                comparison=ABOVE,
                # SQS stops publishing metrics for a queue nobody touched for six hours, even
                # with messages in it: stay in ALARM until a datapoint shows the queue empty.
                missing=cw.TreatMissingData.IGNORE,
            )
        )
        alarms.append(
            self._alarm(
                "TriggerErrors",
                self._functions["trigger"].metric_errors(period=PERIOD, statistic="Sum"),
                "the trigger function failed; its events are redelivered and end in the "
                "dead-letter queue if it keeps failing",
                threshold=0,
                comparison=ABOVE,
            )
        )
        if self._grant_api:
            # Grant failures stop uploads before anything arrives, so no other alarm sees them.
            alarms.append(
                self._alarm(
                    "GrantServerErrors",
                    self._grant_api.metric_server_error(period=PERIOD, statistic="Sum"),
                    "the upload grant API answered 5xx: clients could not get upload grants "
                    "(see the grant function's log)",
                    threshold=0,
                    comparison=ABOVE,
                )
            )
        if self._auto_redrive:
            alarms.append(
                self._alarm(
                    "RedrivesExhausted",
                    cw.Metric(
                        namespace=names.METRICS_NAMESPACE,
                        metric_name=names.METRIC_REDRIVES_EXHAUSTED,
                        dimensions_map=names.METRICS_DIMENSIONS,
                        period=PERIOD,
                        statistic="Sum",
                    ),
                    "an execution failed again after its last automatic redrive: the failure "
                    "is not going away by itself (see `chute show`, then `chute rerun`)",
                    threshold=1,
                )
            )
        alarms.append(self._no_success_alarm(no_success_hours))
        return alarms

    def _no_success_alarm(self, hours: int) -> cw.Alarm:
        period = Duration.hours(hours)
        stalled = cw.MathExpression(
            expression="IF(arrived > 0 AND FILL(succeeded, 0) == 0, 1, 0)",
            using_metrics={
                "arrived": self._events.metric_number_of_messages_sent(
                    period=period, statistic="Sum"
                ),
                "succeeded": self._machine.metric_succeeded(period=period, statistic="Sum"),
            },
            period=period,
            label=f"objects arrived, no execution succeeded ({hours} h)",
        )
        return self._alarm(
            "NoSuccessfulExecution",
            stalled,
            f"objects arrived in the last {hours} h but no execution succeeded: the pipeline is "
            "stuck or every file fails",
            threshold=1,
        )

    def _alarm(
        self,
        name: str,
        metric: cw.IMetric,
        description: str,
        *,
        threshold: float,
        comparison: cw.ComparisonOperator = AT_LEAST,
        missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
    ) -> cw.Alarm:
        return cw.Alarm(
            self,
            name,
            alarm_name=f"{self._prefix}-{name}",
            alarm_description=f"chute: {description}",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            treat_missing_data=missing,
        )

    # --- dashboard ------------------------------------------------------------------------------
    def _widgets(self) -> list[list[cw.IWidget]]:
        machine = self._machine
        statuses = {
            "Started": machine.metric_started,
            "Succeeded": machine.metric_succeeded,
            "Failed": machine.metric_failed,
            "TimedOut": machine.metric_timed_out,
            "Aborted": machine.metric_aborted,
        }
        executions = _graph(
            "Executions by status",
            [metric(period=PERIOD, statistic="Sum", label=s) for s, metric in statuses.items()],
        )
        duration = _graph(
            "Execution duration (p50 / p90 / p99)",
            [
                machine.metric_time(period=PERIOD, statistic=p, label=p)
                for p in ("p50", "p90", "p99")
            ],
            left_label="milliseconds",
        )
        lambda_errors = _graph(
            "Lambda errors by function",
            [
                fn.metric_errors(period=PERIOD, statistic="Sum", label=step)
                for step, fn in self._functions.items()
            ],
        )
        lambda_throttles = _graph(
            "Lambda throttles by function",
            [
                fn.metric_throttles(period=PERIOD, statistic="Sum", label=step)
                for step, fn in self._functions.items()
            ],
        )
        batch = _graph(
            "Batch jobs (submitJob.sync)",
            [
                cw.Metric(
                    namespace=STATES,
                    metric_name=f"ServiceIntegrations{outcome}",
                    dimensions_map={"ServiceIntegrationResourceArn": BATCH_INTEGRATION_ARN},
                    period=PERIOD,
                    statistic="Sum",
                    label=outcome,
                )
                for outcome in ("Started", "Succeeded", "Failed", "TimedOut")
            ],
        )
        files = _graph(
            "Files and bytes processed",
            [
                *[
                    _custom(names.METRIC_FILES_PROCESSED, f"files ({route})", route=route)
                    for route in names.ROUTES
                ],
                cw.MathExpression(
                    # one line per error name (a dimension of FilesQuarantined)
                    expression=(
                        f"SEARCH('{{{names.METRICS_NAMESPACE},error,service}} "
                        f"MetricName=\"{names.METRIC_FILES_QUARANTINED}\"', 'Sum', "
                        f"{int(PERIOD.to_seconds())})"
                    ),
                    label="quarantined",
                    period=PERIOD,
                ),
            ],
            right=[
                _custom(names.METRIC_BYTES_PROCESSED, f"bytes ({route})", route=route)
                for route in names.ROUTES
            ],
            left_label="files",
            right_label="bytes",
        )
        processing = _graph(
            "Processing time by route (upload to archived)",
            [
                _custom(
                    names.METRIC_PROCESSING_SECONDS,
                    f"{route} {stat}",
                    route=route,
                    statistic=stat,
                )
                for route in names.ROUTES
                for stat in ("p50", "p90")
            ],
            left_label="seconds",
        )
        dlq = _graph(
            "Dead-letter queue depth",
            [
                self._dlq.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum", label="messages"
                )
            ],
        )
        backlog = _graph(
            "Trigger queue backlog",
            [
                self._events.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum", label="messages waiting"
                )
            ],
            right=[
                self._events.metric_approximate_age_of_oldest_message(
                    period=PERIOD, statistic="Maximum", label="oldest message age"
                )
            ],
            left_label="messages",
            right_label="seconds",
        )
        status = cw.AlarmStatusWidget(
            title="Alarms",
            alarms=self.alarms,
            width=24,
            height=4,
            sort_by=cw.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
        )
        last_row: list[cw.IWidget] = [backlog]
        if self._grant_api:
            api = self._grant_api
            last_row.append(
                _graph(
                    "Upload grant API requests",
                    [
                        api.metric_count(period=PERIOD, statistic="Sum", label="requests"),
                        api.metric_client_error(
                            period=PERIOD, statistic="Sum", label="4xx (refused, bad token)"
                        ),
                        api.metric_server_error(period=PERIOD, statistic="Sum", label="5xx"),
                    ],
                    right=[api.metric_latency(period=PERIOD, statistic="p90", label="p90 latency")],
                    left_label="requests",
                    right_label="milliseconds",
                )
            )
        return [
            [status],
            [executions, duration],
            [lambda_errors, lambda_throttles],
            [batch, files],
            [processing, dlq],
            last_row,
        ]


def _graph(
    title: str,
    left: Sequence[cw.IMetric],
    *,
    right: Sequence[cw.IMetric] = (),
    left_label: str = "count",
    right_label: str | None = None,
) -> cw.GraphWidget:
    return cw.GraphWidget(
        title=title,
        left=list(left),
        right=list(right),
        left_y_axis=cw.YAxisProps(label=left_label, show_units=False, min=0),
        right_y_axis=cw.YAxisProps(label=right_label, show_units=False, min=0) if right else None,
        width=12,
        height=6,
    )


def _custom(metric_name: str, label: str, *, route: str, statistic: str = "Sum") -> cw.Metric:
    """A metric tasks.metrics prints as EMF: same namespace, name and dimensions."""
    return cw.Metric(
        namespace=names.METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={**names.METRICS_DIMENSIONS, "route": route},
        period=PERIOD,
        statistic=statistic,
        label=label,
    )
