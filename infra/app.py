"""The CDK app: `python infra/app.py [OUTDIR]` synthesizes without the CDK CLI, Docker or an
AWS account (cdk.json points `cdk synth` / `cdk deploy` here too)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Run as a script (cdk.json, `make synth`): make the repository importable.
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.config import ChuteProps  # noqa: E402
from infra.nag import suppress_reviewed_findings  # noqa: E402
from infra.stack import ChuteStack  # noqa: E402

STACK_NAME = "Chute"


def file_context() -> dict[str, object]:
    """The context the CDK CLI would pass: cdk.json's, then cdk.context.json's (lookups)."""
    merged: dict[str, object] = {}
    for name in ("cdk.json", "cdk.context.json"):
        path = REPO_ROOT / name
        if path.exists():
            data = json.loads(path.read_text())
            merged.update(data.get("context", {}) if name == "cdk.json" else data)
    return merged


def build(outdir: str | None = None, context: dict[str, object] | None = None) -> cdk.App:
    # Under the CDK CLI the context arrives in CDK_CONTEXT_JSON; run directly, read the files.
    base = {} if "CDK_CONTEXT_JSON" in os.environ else file_context()
    app = cdk.App(outdir=outdir, context={**base, **(context or {})})
    props = ChuteProps.from_context(app.node.try_get_context)
    env = None
    if os.environ.get("CDK_DEFAULT_ACCOUNT") and props.vpc_id:
        # Looking up an existing VPC needs a concrete account and region.
        env = cdk.Environment(
            account=os.environ["CDK_DEFAULT_ACCOUNT"], region=os.environ.get("CDK_DEFAULT_REGION")
        )
    stack = ChuteStack(app, STACK_NAME, props=props, env=env)
    suppress_reviewed_findings(stack)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build(sys.argv[1] if len(sys.argv) > 1 else None).synth()
