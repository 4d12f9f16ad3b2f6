"""The one reader of a workflow definition (ASL, JSONPath): its states and their kinds, the
transitions between them, the Task states, every retrier and catcher and the error names they
match. Used by the console's graph, the mock-case checks, the local stack and the tests, so that
nobody walks ``workflows/pipeline.asl.json`` by hand.

Reads a file only when asked (``load``); the Lambda image doesn't need it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKFLOW_FILE = Path(__file__).resolve().parents[1] / "workflows" / "pipeline.asl.json"
"""The workflow of chute: the CDK app and the embedded runtime both load it."""


def substitute(text: str, substitutions: Mapping[str, str]) -> str:
    """The definition's text with every ``${Placeholder}`` filled in."""
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", value)
    return text


@dataclass(frozen=True)
class Rule:
    """A retrier or catcher: ``state``'s ``kind`` list, entry ``index``."""

    state: str
    kind: str  # "Retry" | "Catch"
    index: int
    body: Mapping[str, Any]

    @property
    def errors(self) -> list[str]:
        return [str(e) for e in self.body.get("ErrorEquals", [])]


@dataclass(frozen=True)
class Definition:
    document: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path = WORKFLOW_FILE) -> Definition:
        return cls.parse(path.read_text(encoding="utf-8"))

    @classmethod
    def parse(cls, text: str) -> Definition:
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("a workflow definition is a JSON object")
        return cls(document)

    @property
    def states(self) -> Mapping[str, Mapping[str, Any]]:
        """The top-level states, in the file's order."""
        states = self.document.get("States", {})
        return states if isinstance(states, dict) else {}

    def item_states(self, name: str) -> Mapping[str, Mapping[str, Any]]:
        """The states a Map state ``name`` runs for each item (its ItemProcessor's); empty for
        any other state."""
        processor = self.states.get(name, {}).get("ItemProcessor") or {}
        states = processor.get("States", {}) if isinstance(processor, dict) else {}
        return states if isinstance(states, dict) else {}

    def kind(self, name: str) -> str:
        """The state's ``Type`` ("" for a state the definition lacks)."""
        return str(self.states.get(name, {}).get("Type", ""))

    def task_states(self) -> list[str]:
        return [n for n in self.states if self.kind(n) == "Task"]

    def transitions(self) -> list[tuple[str, str, bool]]:
        """``(from, to, only_through_a_catch)`` for every transition between top-level states."""
        found: dict[tuple[str, str], bool] = {}
        states = self.states
        for name, state in states.items():
            targets = [state.get("Next"), state.get("Default")]
            targets += [choice.get("Next") for choice in state.get("Choices", [])]
            edges = [(t, False) for t in targets] + [
                (c.get("Next"), True) for c in state.get("Catch", [])
            ]
            for target, catch in edges:
                if isinstance(target, str) and target in states:
                    found[(name, target)] = found.get((name, target), True) and catch
        return [(s, t, c) for (s, t), c in found.items()]

    def rules(self, kind: str | None = None) -> Iterator[Rule]:
        """Every retrier and catcher (or only ``kind``: "Retry" / "Catch"), state by state."""
        for name, state in self.states.items():
            for rule_kind in ("Retry", "Catch"):
                if kind not in (None, rule_kind):
                    continue
                for index, body in enumerate(state.get(rule_kind, [])):
                    yield Rule(name, rule_kind, index, body)

    def error_names(self) -> set[str]:
        """Every error name a retrier or catcher matches."""
        return {e for rule in self.rules() for e in rule.errors}
