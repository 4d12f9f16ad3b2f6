"""EventBridge (chute/local/moto_patches/events.py): delivering an event parses no JSONPath again
(the interpreter's are tests/workflow/test_moto_patches_stepfunctions.py's).

How these tests go: tests/support/moto_patches.py. Parsers built are counted, never timed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from jsonpath_ng import parser as jsonpath_parser

from chute.local.embedded import EmbeddedAws
from tests.support.moto_patches import without


@contextmanager
def _count_parsers() -> Iterator[list[int]]:
    """JSONPath parsers built (each ``jsonpath_ng`` parse builds one, PLY tables and all)."""
    real = jsonpath_parser.JsonPathParser.__init__
    built = [0]

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built[0] += 1
        real(self, *args, **kwargs)

    jsonpath_parser.JsonPathParser.__init__ = counting  # type: ignore[method-assign]
    try:
        yield built
    finally:
        jsonpath_parser.JsonPathParser.__init__ = real  # type: ignore[method-assign]


@pytest.fixture
def bus_to_logs(embedded: EmbeddedAws) -> Iterator[Any]:
    """A bus of its own whose rule copies every event to a log group, as the stack's does; an
    events client whose put_events sends one event to it."""
    events, logs = embedded.client("events"), embedded.client("logs")
    name = f"probe-jsonpath-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=name)
    logs.create_log_group(logGroupName=f"/probe/{name}")
    group_arn = f"arn:aws:logs:{embedded.settings.region}:{embedded.resources.account}"
    events.put_rule(Name=name, EventBusName=name, EventPattern=json.dumps({"source": ["probe"]}))
    events.put_targets(
        Rule=name,
        EventBusName=name,
        Targets=[{"Id": "logs", "Arn": f"{group_arn}:log-group:/probe/{name}"}],
    )

    def put() -> None:
        entry = {"Source": "probe", "DetailType": "Probe", "Detail": "{}", "EventBusName": name}
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0

    put()  # the first event may parse: the later ones must not
    yield put
    events.remove_targets(Rule=name, EventBusName=name, Ids=["logs"])
    events.delete_rule(Name=name, EventBusName=name)
    events.delete_event_bus(Name=name)
    logs.delete_log_group(logGroupName=f"/probe/{name}")


def test_delivering_an_event_parses_no_path_again(bus_to_logs: Any) -> None:
    with _count_parsers() as built:
        bus_to_logs()
    assert built[0] == 0


@pytest.mark.canary
def test_canary_eventbridge_still_parses_its_template_paths_per_event(bus_to_logs: Any) -> None:
    with without("events-jsonpath-cache"), _count_parsers() as built:
        bus_to_logs()
    assert built[0] >= 5  # the default input template's paths
