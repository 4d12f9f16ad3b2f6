"""The workflow's completion events (docs/events.md): one Announce* state (the EventBridge
putEvents integration) in front of every terminal state a file outcome ends in."""

from __future__ import annotations

from typing import Any

import pytest

from tasks import names
from tasks.workflow import State
from tasks.workflow_definition import Definition, substitute

DEFINITION: dict[str, Any] = dict(Definition.load().document)
STATES: dict[str, Any] = DEFINITION["States"]
ANNOUNCE = {
    State.ANNOUNCE_CONVERTED: ("converted", State.SUCCEEDED),
    State.ANNOUNCE_QUARANTINED: ("quarantined", State.REJECTED),
    State.ANNOUNCE_STALE: ("stale", State.STALE),
    State.ANNOUNCE_REPLACED: ("replaced", State.REPLACED),
}


def _transitions(state: dict[str, Any]) -> list[str]:
    found = [state.get("Next"), state.get("Default")]
    found += [c["Next"] for c in state.get("Choices", [])]
    found += [c["Next"] for c in state.get("Catch", [])]
    return [t for t in found if t]


@pytest.mark.parametrize("announce", list(ANNOUNCE))
def test_each_outcome_is_announced_once_on_the_bus(announce: State) -> None:
    outcome, _ = ANNOUNCE[announce]
    state = STATES[announce]
    assert state["Resource"] == "arn:aws:states:::events:putEvents"
    (entry,) = state["Parameters"]["Entries"]
    assert entry["EventBusName"] == "${CompletionEventBusArn}"
    assert entry["Source"] == names.EVENT_SOURCE
    assert entry["DetailType"] == names.EVENT_DETAIL_TYPES[outcome]
    detail = entry["Detail"]
    assert detail["outcome"] == outcome
    assert {"schemaVersion", "execution.$", "correlationId.$", "file.$"} <= set(detail)
    assert state["ResultPath"] is None  # the state data goes on unchanged


@pytest.mark.parametrize("announce", list(ANNOUNCE))
def test_a_failed_event_never_changes_the_files_outcome(announce: State) -> None:
    _, terminal = ANNOUNCE[announce]
    state = STATES[announce]
    assert state["Next"] == terminal
    (retry,) = state["Retry"]
    assert retry["ErrorEquals"] == ["States.TaskFailed"]
    (catch,) = state["Catch"]
    assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.eventError", "Next": terminal}


@pytest.mark.parametrize("announce", list(ANNOUNCE))
def test_every_way_into_a_terminal_outcome_passes_its_announce_state(announce: State) -> None:
    _, terminal = ANNOUNCE[announce]
    into = [n for n, s in STATES.items() if terminal in _transitions(s)]
    assert into == [announce]


def test_the_bus_placeholder_is_filled_like_the_others() -> None:
    text = substitute('{"b": "${CompletionEventBusArn}"}', {"CompletionEventBusArn": "arn:bus"})
    assert text == '{"b": "arn:bus"}'
    assert "CompletionEventBusArn" in names.PLACEHOLDERS
