"""Infra-tier helpers: the synthesized stack and its template."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import CfnElement, assertions
from constructs import IConstruct

from infra.app import STACK_NAME, build
from infra.stack import ChuteStack

DEFAULT_CONTEXT: dict[str, object] = {"chute:alert_email": "ops@example.com"}


class Synth:
    def __init__(self, outdir: Path, context: dict[str, object] | None = None) -> None:
        self.app = build(str(outdir), context=DEFAULT_CONTEXT if context is None else context)
        self.assembly = self.app.synth()
        stack = self.app.node.find_child(STACK_NAME)
        assert isinstance(stack, ChuteStack)
        self.stack = stack
        self.template = assertions.Template.from_stack(stack)
        self.json: dict[str, Any] = self.template.to_json()
        self.template_path = outdir / f"{STACK_NAME}.template.json"
        self.outdir = outdir

    def resources(self, typ: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.json["Resources"].items() if v["Type"] == typ}

    def one(self, typ: str) -> dict[str, Any]:
        found = list(self.resources(typ).values())
        assert len(found) == 1, f"{len(found)} {typ}"
        return found[0]["Properties"]

    def logical_id(self, construct: IConstruct) -> str:
        """The logical ID of a construct's CloudFormation resource, asked from the stack."""
        child = construct.node.default_child
        assert isinstance(child, CfnElement)
        return self.stack.get_logical_id(child)

    def ref(self, construct: IConstruct) -> dict[str, str]:
        return {"Ref": self.logical_id(construct)}


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
