"""The workflow graph of one execution: the states of the definition (the deployed one, read with
DescribeStateMachine), laid out by grandalf's Sugiyama layout, each coloured by what happened to
it in the execution's event history.

Pure: the definition and the events come in, plain data for the SVG template goes out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout
from grandalf.routing import route_with_lines

from tasks.workflow_definition import Definition

StateStatus = Literal["not-run", "running", "succeeded", "retried", "failed", "caught"]

NODE_HEIGHT = 34.0
CHAR_WIDTH = 7.4  # at the template's 12px font
MARGIN = 16.0


@dataclass
class StateRecord:
    """What happened to one state in an execution (all its entries together)."""

    name: str
    status: StateStatus = "not-run"
    entered: int = 0
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    started: datetime | None = None
    ended: datetime | None = None
    input: str | None = None
    output: str | None = None

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return (self.ended - self.started).total_seconds()


@dataclass(frozen=True)
class Node:
    name: str
    kind: str  # the ASL Type
    x: float  # top-left corner
    y: float
    width: float
    height: float
    record: StateRecord

    @property
    def cx(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Arrow:
    points: tuple[tuple[float, float], ...]
    catch: bool  # a Catch edge (drawn dashed)
    taken: bool  # the execution went this way

    @property
    def path(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in self.points)


@dataclass(frozen=True)
class Drawing:
    nodes: list[Node]
    arrows: list[Arrow]
    width: float
    height: float


def transitions(definition: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """``(from, to, is_catch)`` for every transition of the top-level states."""
    return Definition(definition).transitions()


def records(
    definition: Mapping[str, Any], events: Iterable[Mapping[str, Any]], execution_status: str
) -> dict[str, StateRecord]:
    """Each state's record from the execution's history (GetExecutionHistory events, in order)."""
    reader = Definition(definition)
    result = {name: StateRecord(name) for name in reader.states}
    current: StateRecord | None = None
    failed_in_current = False
    for event in events:
        kind = str(event.get("type", ""))
        if "stateEnteredEventDetails" in event:
            details = event["stateEnteredEventDetails"]
            if current is not None and failed_in_current:
                current.status = "caught"  # left through a Catch: the next state was entered
            current = result.setdefault(details["name"], StateRecord(details["name"]))
            failed_in_current = False
            current.entered += 1
            current.status = "running"
            current.started = current.started or event.get("timestamp")
            current.input = details.get("input")
        elif "stateExitedEventDetails" in event and current is not None:
            details = event["stateExitedEventDetails"]
            current.ended = event.get("timestamp")
            current.output = details.get("output")
            if failed_in_current:
                current.status = "caught"
            else:
                current.status = "retried" if current.errors else "succeeded"
            failed_in_current = False
            if reader.kind(current.name) == "Fail":
                current.status = "failed"
        elif kind.endswith("Scheduled") and current is not None:
            current.attempts += 1
            failed_in_current = False  # a retry
        elif kind.endswith("Succeeded") and current is not None:
            failed_in_current = False
        elif kind.endswith("Failed") or kind.endswith("TimedOut"):
            if current is None or kind in ("ExecutionFailed", "ExecutionTimedOut"):
                continue
            failure: dict[str, Any] = next(
                (v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)),
                {},
            )
            current.errors.append(str(failure.get("error") or kind))
            current.ended = event.get("timestamp")
            failed_in_current = True
    if current is not None:
        kind = reader.kind(current.name)
        ended = execution_status != "RUNNING"
        if kind == "Fail" or (ended and (current.status == "running" or failed_in_current)):
            current.status = "failed"
    return result


def layout(definition: Mapping[str, Any], states: Mapping[str, StateRecord]) -> Drawing:
    """Sugiyama layout (grandalf) of the definition's top-level states, top to bottom."""
    reader = Definition(definition)
    names = list(reader.states)
    kinds = {n: reader.kind(n) for n in names}
    vertices = {n: Vertex(n) for n in names}
    for name, vertex in vertices.items():
        vertex.view = _Box(max(90.0, CHAR_WIDTH * len(name) + 24), NODE_HEIGHT)
    edges = transitions(definition)
    links = [Edge(vertices[s], vertices[t]) for s, t, _ in edges]
    for link in links:
        link.view = _Path()
    graph = Graph(list(vertices.values()), links)
    for component in graph.C:
        sugiyama = SugiyamaLayout(component)
        sugiyama.route_edge = route_with_lines  # polylines through the layers, box to box
        roots = [v for v in component.sV if v.data == definition.get("StartAt")]
        sugiyama.init_all(roots=roots or None)
        sugiyama.xspace, sugiyama.yspace = 24, 30
        sugiyama.draw()
    bends = [p for link in links for p in link.view.points]  # routes may pass outside nodes
    xs = [v.view.xy[0] - v.view.w / 2 for v in vertices.values()] + [x for x, _ in bends]
    ys = [v.view.xy[1] - v.view.h / 2 for v in vertices.values()] + [y for _, y in bends]
    dx, dy = MARGIN - min(xs), MARGIN - min(ys)
    nodes = [
        Node(
            name=n,
            kind=kinds[n],
            x=v.view.xy[0] - v.view.w / 2 + dx,
            y=v.view.xy[1] - v.view.h / 2 + dy,
            width=v.view.w,
            height=v.view.h,
            record=states.get(n) or StateRecord(n),
        )
        for n, v in vertices.items()
    ]
    by_name = {n.name: n for n in nodes}
    arrows = []
    for (source, target, catch), link in zip(edges, links, strict=True):
        a, b = by_name[source], by_name[target]
        points = tuple((x + dx, y + dy) for x, y in link.view.points)
        taken = a.record.entered > 0 and b.record.entered > 0
        arrows.append(Arrow(points=points, catch=catch, taken=taken))
    width = max([n.x + n.width for n in nodes] + [x for a in arrows for x, _ in a.points]) + MARGIN
    height = max([n.y + n.height for n in nodes] + [y for a in arrows for _, y in a.points])
    height += MARGIN
    return Drawing(nodes=nodes, arrows=arrows, width=width, height=height)


class _Path:
    """Where grandalf puts an edge's route (``setpath``) and its head's angle."""

    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []
        self.head_angle = 0.0

    def setpath(self, points: list[tuple[float, float]]) -> None:
        self.points = [(float(x), float(y)) for x, y in points]


class _Box:
    """The size grandalf needs of a vertex; it writes the centre to ``xy``."""

    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy: tuple[float, float] = (0.0, 0.0)


def pretty(document: str | None, limit: int = 20_000) -> str:
    """A step's input/output JSON indented for reading (cut at ``limit`` characters)."""
    if document is None:
        return ""
    try:
        text = json.dumps(json.loads(document), indent=2, ensure_ascii=False)
    except ValueError:
        text = document
    return text if len(text) <= limit else text[:limit] + "\n… (cut)"
