"""Alarms, the alert topic and the dashboard, read from the synthesized template.

Logical IDs are never written here: where a test needs one, it asks the stack for the ID of the
construct it means. CloudWatch accepts any metric name, so a typo would synthesize, deploy and
stay silent forever: every AWS metric name in the template must be in the allowlists below.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

from infra.components.observability import Observability
from infra.components.workflow import WORKFLOW_FILE
from tasks import names
from tests.support.synth import Synth

# The real CloudWatch metric names of each AWS namespace chute may use (from the Step Functions,
# Lambda and SQS "metrics" pages of the AWS documentation).
REAL_METRICS: dict[str, frozenset[str]] = {
    "AWS/States": frozenset(
        {
            "ExecutionsStarted",
            "ExecutionsSucceeded",
            "ExecutionsFailed",
            "ExecutionsTimedOut",
            "ExecutionsAborted",
            "ExecutionThrottled",
            "ExecutionTime",
            "ExecutionsRedriven",
            "RedrivenExecutionsSucceeded",
            "RedrivenExecutionsFailed",
            "RedrivenExecutionsTimedOut",
            "RedrivenExecutionsAborted",
            "ServiceIntegrationsStarted",
            "ServiceIntegrationsSucceeded",
            "ServiceIntegrationsFailed",
            "ServiceIntegrationsTimedOut",
            "ServiceIntegrationsScheduled",
            "ServiceIntegrationTime",
            "ServiceIntegrationRunTime",
            "ServiceIntegrationScheduleTime",
            "LambdaFunctionsStarted",
            "LambdaFunctionsSucceeded",
            "LambdaFunctionsFailed",
            "LambdaFunctionsTimedOut",
            "LambdaFunctionsScheduled",
            "LambdaFunctionTime",
            "LambdaFunctionRunTime",
            "LambdaFunctionScheduleTime",
        }
    ),
    "AWS/Lambda": frozenset(
        {
            "Invocations",
            "Errors",
            "Throttles",
            "Duration",
            "ConcurrentExecutions",
            "UnreservedConcurrentExecutions",
            "DeadLetterErrors",
            "DestinationDeliveryFailures",
            "IteratorAge",
            "PostRuntimeExtensionsDuration",
            "ProvisionedConcurrencySpilloverInvocations",
            "RecursiveInvocationsDropped",
        }
    ),
    # HTTP APIs (the upload grant API); REST APIs name theirs 4XXError/5XXError instead.
    "AWS/ApiGateway": frozenset(
        {"Count", "4xx", "5xx", "Latency", "IntegrationLatency", "DataProcessed"}
    ),
    "AWS/SQS": frozenset(
        {
            "ApproximateAgeOfOldestMessage",
            "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesVisible",
            "NumberOfEmptyReceives",
            "NumberOfDeletedMessages",
            "NumberOfMessagesDeleted",
            "NumberOfMessagesReceived",
            "NumberOfMessagesSent",
            "SentMessageSize",
        }
    ),
}
CUSTOM_METRICS = {
    names.METRIC_FILES_PROCESSED,
    names.METRIC_BYTES_PROCESSED,
    names.METRIC_PROCESSING_SECONDS,
}
REQUIRED_ALARM_METRICS = {
    ("AWS/States", "ExecutionsFailed"),
    ("AWS/States", "ExecutionsTimedOut"),
    ("AWS/States", "ExecutionsAborted"),
    ("AWS/States", "ExecutionThrottled"),
    ("AWS/States", "ExecutionsSucceeded"),
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    ("AWS/SQS", "NumberOfMessagesSent"),
    ("AWS/Lambda", "Errors"),
    ("AWS/ApiGateway", "5xx"),
}
WIDGET_TITLES = {
    "Alarms",
    "Executions by status",
    "Execution duration (p50 / p90 / p99)",
    "Lambda errors by function",
    "Lambda throttles by function",
    "Batch jobs (submitJob.sync)",
    "Files and bytes processed",
    "Dead-letter queue depth",
    "Trigger queue backlog",
    "Processing time by route (upload to archived)",
    "Upload grant API requests",
}


# --- helpers ------------------------------------------------------------------------------------


def _alarms(synth: Synth) -> list[dict[str, Any]]:
    return [a["Properties"] for a in synth.resources("AWS::CloudWatch::Alarm").values()]


def _alarm(synth: Synth, name: str) -> dict[str, Any]:
    wanted = f"{synth.stack.stack_name}-{name}"
    found = [a for a in _alarms(synth) if a["AlarmName"] == wanted]
    assert len(found) == 1, wanted
    return found[0]


def _alarm_metrics(alarm: dict[str, Any]) -> Iterator[tuple[str, str, list[Any]]]:
    """(namespace, metric name, dimensions) of every metric an alarm reads."""
    if "MetricName" in alarm:
        yield alarm["Namespace"], alarm["MetricName"], alarm.get("Dimensions", [])
    for query in alarm.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            yield metric["Namespace"], metric["MetricName"], metric.get("Dimensions", [])


class Dashboard:
    """The dashboard body (an Fn::Join of JSON fragments and tokens) parsed back into JSON, each
    token replaced by a placeholder string that `tokens` maps back to the intrinsic."""

    def __init__(self, synth: Synth) -> None:
        self.props = synth.one("AWS::CloudWatch::Dashboard")
        self.tokens: dict[str, Any] = {}
        text = []
        for part in self.props["DashboardBody"]["Fn::Join"][1]:
            if isinstance(part, str):
                text.append(part)
            else:
                placeholder = f"__token{len(self.tokens)}__"
                self.tokens[placeholder] = part
                text.append(placeholder)
        self.body: dict[str, Any] = json.loads("".join(text))

    def widget(self, title: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [
            w for w in self.body["widgets"] if w["properties"].get("title") == title
        ]
        assert len(found) == 1, title
        return found[0]

    def metrics(self, title: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
        """(namespace, metric name, {dimension: value}) of every metric row of the graphs."""
        rows: list[tuple[str, str, dict[str, Any]]] = []
        widgets = [self.widget(title)] if title else self.body["widgets"]
        for widget in widgets:
            previous: list[Any] = []
            for row in widget["properties"].get("metrics", []):
                if isinstance(row[0], dict):  # a math expression, no metric of its own
                    continue
                # "." repeats the value at the same position in the previous row
                values = [
                    previous[i] if v == "." and i < len(previous) else v for i, v in enumerate(row)
                ]
                previous = values
                plain = [v for v in values if not isinstance(v, dict)]
                dimensions = {
                    plain[i]: self.tokens.get(plain[i + 1], plain[i + 1])
                    for i in range(2, len(plain) - 1, 2)
                }
                rows.append((plain[0], plain[1], dimensions))
        return rows


@pytest.fixture(scope="module")
def dashboard(synth: Synth) -> Dashboard:
    return Dashboard(synth)


# --- alerting -----------------------------------------------------------------------------------
def test_every_alarm_notifies_the_alert_topic(synth: Synth) -> None:
    topic = synth.ref(synth.stack.observability.alert_topic)
    alarms = _alarms(synth)
    assert len(alarms) == len(synth.stack.observability.alarms) == 9
    for alarm in alarms:
        assert alarm["AlarmActions"] == [topic], alarm["AlarmName"]
        assert alarm.get("ActionsEnabled", True) is True


def test_alarms_watch_the_required_metrics(synth: Synth) -> None:
    used = {(ns, name) for a in _alarms(synth) for ns, name, _ in _alarm_metrics(a)}
    assert used >= REQUIRED_ALARM_METRICS


def test_alarms_watch_the_right_resources(synth: Synth) -> None:
    stack = synth.stack
    machine = [{"Name": "StateMachineArn", "Value": synth.ref(stack.workflow.state_machine)}]
    for name in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"):
        alarm = _alarm(synth, name)
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/States", name)
        assert alarm["Dimensions"] == machine
        assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 1)
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
    throttled = _alarm(synth, "ExecutionThrottled")
    assert (throttled["MetricName"], throttled["Dimensions"]) == ("ExecutionThrottled", machine)

    dlq = _alarm(synth, "DeadLetterQueueNotEmpty")
    assert (dlq["Namespace"], dlq["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert dlq["Dimensions"] == [
        {
            "Name": "QueueName",
            "Value": {"Fn::GetAtt": [synth.logical_id(stack.ingest.dlq), "QueueName"]},
        }
    ]
    assert (dlq["ComparisonOperator"], dlq["Threshold"]) == ("GreaterThanThreshold", 0)
    # SQS stops publishing for an untouched queue: keep alarming until it is seen empty.
    assert dlq["TreatMissingData"] == "ignore"

    errors = _alarm(synth, "TriggerErrors")
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": synth.ref(stack.trigger)}]
    assert (errors["ComparisonOperator"], errors["Threshold"]) == ("GreaterThanThreshold", 0)

    grants = _alarm(synth, "GrantServerErrors")
    assert (grants["Namespace"], grants["MetricName"]) == ("AWS/ApiGateway", "5xx")
    assert grants["Dimensions"] == [{"Name": "ApiId", "Value": synth.ref(stack.grants.api)}]
    assert (grants["Statistic"], grants["Period"]) == ("Sum", 300)
    assert (grants["ComparisonOperator"], grants["Threshold"]) == ("GreaterThanThreshold", 0)

    # the name and dimensions tasks.metrics prints (EMF): anything else never has data
    capped = _alarm(synth, "RedrivesExhausted")
    assert (capped["Namespace"], capped["MetricName"]) == ("chute", "RedrivesExhausted")
    assert capped["Dimensions"] == [{"Name": "service", "Value": "chute"}]
    assert (capped["Statistic"], capped["ComparisonOperator"], capped["Threshold"]) == (
        "Sum",
        "GreaterThanOrEqualToThreshold",
        1,
    )


def test_no_success_alarm_compares_arrivals_with_successes_over_the_configured_hours(
    synth: Synth,
) -> None:
    alarm = _alarm(synth, "NoSuccessfulExecution")
    hours = synth.stack.props.no_success_alarm_hours
    queries = {q["Id"]: q for q in alarm["Metrics"]}
    expressions = [q for q in alarm["Metrics"] if "Expression" in q]
    assert len(expressions) == 1
    expression = expressions[0]
    assert expression["ReturnData"] is True
    text = expression["Expression"].replace(" ", "")
    assert "FILL(succeeded,0)" in text
    assert "arrived>0" in text
    assert text.startswith("IF(")
    arrived = queries["arrived"]["MetricStat"]
    succeeded = queries["succeeded"]["MetricStat"]
    assert (arrived["Metric"]["Namespace"], arrived["Metric"]["MetricName"]) == (
        "AWS/SQS",
        "NumberOfMessagesSent",
    )
    assert arrived["Metric"]["Dimensions"] == [
        {
            "Name": "QueueName",
            "Value": {"Fn::GetAtt": [synth.logical_id(synth.stack.ingest.queue), "QueueName"]},
        }
    ]
    assert (succeeded["Metric"]["Namespace"], succeeded["Metric"]["MetricName"]) == (
        "AWS/States",
        "ExecutionsSucceeded",
    )
    for stat in (arrived, succeeded):
        assert stat["Period"] == hours * 3600
        assert stat["Stat"] == "Sum"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"


def test_alert_topic_is_encrypted_tls_only_and_cloudwatch_may_publish(synth: Synth) -> None:
    stack = synth.stack
    topic_id = synth.logical_id(stack.observability.alert_topic)
    key_id = synth.logical_id(stack.key)
    topic = synth.json["Resources"][topic_id]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}

    key_policy = synth.json["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [
        s for s in key_policy if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert len(cloudwatch) == 1
    assert cloudwatch[0]["Effect"] == "Allow"
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"])

    policies = [
        p
        for p in synth.resources("AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": topic_id}]
    ]
    assert len(policies) == 1
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    publish = [
        s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert len(publish) == 1
    assert (publish[0]["Effect"], publish[0]["Action"]) == ("Allow", "sns:Publish")
    assert publish[0]["Condition"]["StringEquals"] == {
        "aws:SourceAccount": {"Ref": "AWS::AccountId"}
    }
    assert ":alarm:*" in json.dumps(publish[0]["Condition"]["ArnLike"])


def test_alert_email_is_subscribed(synth: Synth) -> None:
    assert synth.stack.props.alert_email == "ops@example.com"  # from the conftest context
    synth.template.has_resource_properties(
        "AWS::SNS::Subscription",
        {
            "Protocol": "email",
            "Endpoint": "ops@example.com",
            "TopicArn": synth.ref(synth.stack.observability.alert_topic),
        },
    )


# --- metric names -------------------------------------------------------------------------------
def test_every_aws_metric_name_in_alarms_and_dashboard_is_real(
    synth: Synth, dashboard: Dashboard
) -> None:
    used = [(ns, name) for a in _alarms(synth) for ns, name, _ in _alarm_metrics(a)]
    used += [(ns, name) for ns, name, _ in dashboard.metrics()]
    by_namespace: dict[str, set[str]] = {}
    for ns, name in used:
        by_namespace.setdefault(ns, set()).add(name)
    assert set(by_namespace) == {*REAL_METRICS, names.METRICS_NAMESPACE}
    for ns, real in REAL_METRICS.items():
        unknown = by_namespace[ns] - real
        assert not unknown, f"not {ns} metrics: {sorted(unknown)}"


def test_metric_name_extraction_sees_the_whole_dashboard(dashboard: Dashboard) -> None:
    """Guards the test above: the parser must find the metrics of every graph widget."""
    graphs = [w for w in dashboard.body["widgets"] if w["type"] == "metric"]
    assert len(graphs) == len(WIDGET_TITLES) - 1
    for widget in graphs:
        assert dashboard.metrics(widget["properties"]["title"])


def test_a_misspelt_metric_name_would_be_caught() -> None:
    assert "ExecutionsFailed" in REAL_METRICS["AWS/States"]
    assert "ExecutionFailed" not in REAL_METRICS["AWS/States"]
    assert "ExecutionsThrottled" not in REAL_METRICS["AWS/States"]
    assert "Error" not in REAL_METRICS["AWS/Lambda"]


def test_custom_metrics_are_exactly_what_the_tasks_emit(dashboard: Dashboard) -> None:
    custom = [m for m in dashboard.metrics() if m[0] == names.METRICS_NAMESPACE]
    assert {name for _, name, _ in custom} == CUSTOM_METRICS
    for _, _, dimensions in custom:
        # the route dimension tasks.metrics adds, for each route
        assert {k: v for k, v in dimensions.items() if k != "route"} == names.METRICS_DIMENSIONS
        assert dimensions["route"] in names.ROUTES
    assert {d["route"] for _, _, d in custom} == set(names.ROUTES)
    # quarantined files per error name: a SEARCH over the error dimension
    searches = json.dumps(dashboard.body)
    assert f'MetricName=\\"{names.METRIC_FILES_QUARANTINED}\\"' in searches
    assert "{chute,error,service}" in searches


# --- dashboard ----------------------------------------------------------------------------------
def test_dashboard_is_named_after_the_stack_with_the_expected_widgets(
    synth: Synth, dashboard: Dashboard
) -> None:
    assert dashboard.props["DashboardName"] == f"chute-{synth.stack.stack_name}"
    titles = [w["properties"].get("title") for w in dashboard.body["widgets"]]
    assert set(titles) == WIDGET_TITLES
    assert len(titles) == len(WIDGET_TITLES)


def test_alarm_widget_shows_every_alarm(synth: Synth, dashboard: Dashboard) -> None:
    shown = [dashboard.tokens[a] for a in dashboard.widget("Alarms")["properties"]["alarms"]]
    expected = [
        {"Fn::GetAtt": [synth.logical_id(alarm), "Arn"]}
        for alarm in synth.stack.observability.alarms
    ]
    assert sorted(map(json.dumps, shown)) == sorted(map(json.dumps, expected))


def test_execution_widgets_cover_every_status_and_percentile(
    synth: Synth, dashboard: Dashboard
) -> None:
    machine = synth.ref(synth.stack.workflow.state_machine)
    statuses = dashboard.metrics("Executions by status")
    assert {name for _, name, _ in statuses} == {
        f"Executions{s}" for s in ("Started", "Succeeded", "Failed", "TimedOut", "Aborted")
    }
    assert all(dims == {"StateMachineArn": machine} for _, _, dims in statuses)
    rows = dashboard.widget("Execution duration (p50 / p90 / p99)")["properties"]["metrics"]
    assert {row[1] for row in rows} == {"ExecutionTime"}
    assert sorted(row[-1]["stat"] for row in rows) == ["p50", "p90", "p99"]


def test_lambda_widgets_cover_every_function(synth: Synth, dashboard: Dashboard) -> None:
    # every handler's function, the grant function included
    assert set(synth.stack.functions) == set(names.HANDLERS)
    functions = [synth.ref(fn) for fn in synth.stack.functions.values()]
    assert len(functions) == len(names.HANDLERS)
    for title, metric in (
        ("Lambda errors by function", "Errors"),
        ("Lambda throttles by function", "Throttles"),
    ):
        rows = dashboard.metrics(title)
        assert {name for _, name, _ in rows} == {metric}
        shown = [dims["FunctionName"] for _, _, dims in rows]
        assert sorted(map(json.dumps, shown)) == sorted(map(json.dumps, functions))


def test_batch_widget_uses_the_workflows_batch_integration(dashboard: Dashboard) -> None:
    asl = json.loads(WORKFLOW_FILE.read_text())
    batch = {
        s["Resource"] for s in asl["States"].values() if "batch:" in str(s.get("Resource", ""))
    }
    assert len(batch) == 1
    rows = dashboard.metrics("Batch jobs (submitJob.sync)")
    assert {name for _, name, _ in rows} >= {
        "ServiceIntegrationsStarted",
        "ServiceIntegrationsSucceeded",
        "ServiceIntegrationsFailed",
    }
    resource = batch.pop()
    assert all(dims == {"ServiceIntegrationResourceArn": resource} for *_, dims in rows)


def test_grant_api_widget_shows_requests_errors_and_latency(
    synth: Synth, dashboard: Dashboard
) -> None:
    rows = dashboard.metrics("Upload grant API requests")
    assert {name for _, name, _ in rows} == {"Count", "4xx", "5xx", "Latency"}
    api = {"ApiId": synth.ref(synth.stack.grants.api)}
    assert all(ns == "AWS/ApiGateway" and dims == api for ns, _, dims in rows)


def test_dlq_widget_shows_the_dead_letter_queue(synth: Synth, dashboard: Dashboard) -> None:
    rows = dashboard.metrics("Dead-letter queue depth")
    dlq = {"Fn::GetAtt": [synth.logical_id(synth.stack.ingest.dlq), "QueueName"]}
    assert rows == [("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": dlq})]


# --- outputs ------------------------------------------------------------------------------------
def test_outputs_locate_the_dashboard_and_the_alert_topic(synth: Synth) -> None:
    outputs = synth.json["Outputs"]
    assert outputs["AlertTopicArn"]["Value"] == synth.ref(synth.stack.observability.alert_topic)
    url = outputs["DashboardConsoleUrl"]["Value"]["Fn::Join"][1]
    region = {"Ref": "AWS::Region"}
    assert url == [
        "https://",
        region,
        ".console.aws.amazon.com/cloudwatch/home?region=",
        region,
        f"#dashboards/dashboard/chute-{synth.stack.stack_name}",
    ]


# --- construct arguments ------------------------------------------------------------------------
def _observability(**overrides: Any) -> Observability:
    stack = cdk.Stack(cdk.App(), "Probe")
    arn = "arn:aws:{}:eu-west-1:111122223333:{}"
    kwargs: dict[str, Any] = {
        "state_machine": sfn.StateMachine.from_state_machine_arn(
            stack, "Machine", arn.format("states", "stateMachine:m")
        ),
        "functions": {
            "trigger": lambda_.Function.from_function_arn(
                stack, "Trigger", arn.format("lambda", "function:t")
            )
        },
        "dead_letter_queue": sqs.Queue.from_queue_arn(stack, "Dlq", arn.format("sqs", "dlq")),
        "events_queue": sqs.Queue.from_queue_arn(stack, "Events", arn.format("sqs", "events")),
        "key": kms.Key(stack, "Key"),
        "alert_email": None,
        "no_success_hours": 6,
    }
    kwargs.update({k: v(stack) if callable(v) else v for k, v in overrides.items()})
    return Observability(stack, "Observability", **kwargs)


def test_a_standalone_stack_gets_alarms_without_a_subscription() -> None:
    obs = _observability()
    template = assertions.Template.from_stack(cdk.Stack.of(obs))
    template.resource_count_is("AWS::CloudWatch::Alarm", 7)
    template.resource_count_is("AWS::SNS::Subscription", 0)
    assert obs.dashboard_name == "chute-Probe"


@pytest.mark.parametrize("hours", [0, 25, 48])
def test_no_success_hours_must_fit_in_one_day(hours: int) -> None:
    with pytest.raises(ValueError, match="1 to 24 hours"):
        _observability(no_success_hours=hours)


def test_a_key_whose_policy_cannot_change_is_refused() -> None:
    def imported(stack: cdk.Stack) -> kms.IKey:
        return kms.Key.from_key_arn(
            stack, "Imported", "arn:aws:kms:eu-west-1:111122223333:key/1234abcd"
        )

    with pytest.raises(ValueError, match="policy cannot be changed"):
        _observability(key=imported)


def test_the_trigger_function_is_required() -> None:
    with pytest.raises(ValueError, match="trigger"):
        _observability(functions={})
