"""The identity policies the stack gives each function and the Batch job, extracted from the
synthesized template for the embedded runtime's IAM enforcement (chute/local/iam.py).

``python -m infra.local_policies`` rewrites ``chute/local/iam_policies.json`` (checked in, so
`chute up` needs no CDK or node); tests/infra checks it equals a fresh synth. References to the
stack's resources become ``${Placeholder}``s the embedded runtime fills with its own names;
anything else chute doesn't create locally stays ``${unresolved:<logical id>}`` (never matches).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import CfnElement
from constructs import IConstruct

from infra.app import STACK_NAME, build
from infra.stack import ChuteStack

POLICIES_FILE = Path(__file__).resolve().parents[1] / "chute" / "local" / "iam_policies.json"


def _logical_id(stack: ChuteStack, construct: IConstruct) -> str:
    child = construct.node.default_child
    assert isinstance(child, CfnElement)
    return stack.get_logical_id(child)


def placeholders(stack: ChuteStack) -> dict[tuple[str, str], str]:
    """(logical id, "Ref" or attribute) -> the placeholder of a resource chute creates locally."""
    s = stack.storage
    found: dict[tuple[str, str], str] = {}
    for role, bucket in (
        ("Staging", s.staging),
        ("Output", s.output),
        ("Archive", s.archive),
        ("Quarantine", s.quarantine),
    ):
        found[(_logical_id(stack, bucket), "Ref")] = f"${{{role}Bucket}}"
        found[(_logical_id(stack, bucket), "Arn")] = f"arn:aws:s3:::${{{role}Bucket}}"
    machine = _logical_id(stack, stack.workflow.state_machine)
    found[(machine, "Ref")] = "${StateMachineArn}"
    found[(machine, "Name")] = "${StateMachineName}"
    found[(_logical_id(stack, stack.ingest.queue), "Arn")] = "${EventsQueueArn}"
    found[(_logical_id(stack, stack.grants.upload_role), "Arn")] = "${UploadRoleArn}"
    found[(_logical_id(stack, stack.events.bus), "Arn")] = "${EventBusArn}"
    return found


def resolve(value: Any, known: dict[tuple[str, str], str]) -> Any:
    """A policy value with CloudFormation's intrinsic functions replaced by placeholders."""
    if isinstance(value, list):
        return [resolve(v, known) for v in value]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        pseudo = {"AWS::Partition": "aws", "AWS::Region": "${Region}"}
        pseudo["AWS::AccountId"] = "${Account}"
        ref = str(value["Ref"])
        return pseudo.get(ref) or known.get((ref, "Ref"), f"${{unresolved:{ref}}}")
    if "Fn::GetAtt" in value:
        logical, attribute = value["Fn::GetAtt"]
        return known.get((logical, attribute), f"${{unresolved:{logical}}}")
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(p, known)) for p in parts)
    if "Fn::Sub" in value:
        text = value["Fn::Sub"]
        return re.sub(r"\$\{AWS::(\w+)\}", lambda m: "aws" if m[1] == "Partition" else m[0], text)
    return {k: resolve(v, known) for k, v in value.items()}


def role_statements(template: dict[str, Any], role: str, known: Any) -> list[dict[str, Any]]:
    """Every statement of the policies attached to ``role`` (logical id), resolved."""
    resources = template["Resources"]
    statements: list[dict[str, Any]] = []
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in props.get("Roles", []):
            statements += props["PolicyDocument"]["Statement"]
    for inline in resources[role]["Properties"].get("Policies", []):
        statements += inline["PolicyDocument"]["Statement"]
    return [resolve(s, known) for s in statements]


def extract(stack: ChuteStack, template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """step (and ``"batch"``) -> the statements of its role."""
    known = placeholders(stack)
    roles = {step: _logical_id(stack, task.role) for step, task in stack.steps.items()}
    roles["batch"] = _logical_id(stack, stack.conversion.job_role)
    return {step: role_statements(template, role, known) for step, role in sorted(roles.items())}


def synthesized() -> dict[str, list[dict[str, Any]]]:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    with tempfile.TemporaryDirectory() as outdir:
        app = build(outdir, context={})
        assembly = app.synth()
        stack = app.node.find_child(STACK_NAME)
        assert isinstance(stack, ChuteStack)
        template = assembly.get_stack_by_name(STACK_NAME).template
        return extract(stack, template)


def render(policies: dict[str, list[dict[str, Any]]]) -> str:
    return json.dumps(policies, indent=2, sort_keys=True) + "\n"


def main() -> int:
    POLICIES_FILE.write_text(render(synthesized()), encoding="utf-8")
    print(f"wrote {POLICIES_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
