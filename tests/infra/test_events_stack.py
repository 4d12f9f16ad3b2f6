"""The completion events' bus in the stack (docs/events.md): named by chute:event_bus_name,
the state machine may put events on it (and nowhere else), a rule copies chute's events into a
log group operators may read."""

from __future__ import annotations

from tasks import names
from tests.support.synth import Synth


def test_the_bus_is_the_workflows_placeholder_and_the_machine_may_put_on_it(synth: Synth) -> None:
    bus = synth.stack.events.bus
    assert synth.stack.substitutions()["CompletionEventBusArn"] == bus.event_bus_arn
    (props,) = [r["Properties"] for r in synth.resources("AWS::Events::EventBus").values()]
    assert props["Name"] == "Chute-events"
    puts = [
        s
        for p in synth.resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "events:PutEvents" in str(s["Action"])
    ]
    (statement,) = puts
    assert statement["Resource"] == {"Fn::GetAtt": [synth.logical_id(bus), "Arn"]}


def test_a_rule_copies_chutes_events_into_a_log_group(synth: Synth) -> None:
    (rule,) = [
        r["Properties"]
        for r in synth.resources("AWS::Events::Rule").values()
        if "EventPattern" in r["Properties"]
    ]
    assert rule["EventPattern"] == {"source": [names.EVENT_SOURCE]}
    (target,) = rule["Targets"]
    assert "log-group" in str(target["Arn"])
    outputs = synth.json["Outputs"]
    assert {"EventBusArn", "EventsLogGroup"} <= set(outputs)
    assert synth.resources("AWS::Logs::ResourcePolicy")
