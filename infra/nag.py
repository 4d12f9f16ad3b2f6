"""cdk-nag AwsSolutions findings that were reviewed and accepted.

Each acknowledgment is attached to the construct it concerns and names the exact finding
(rule + the wildcard it accepts), with the reason. Anything else fails synthesis
(tests/infra/test_nag.py). Finding IDs embed CloudFormation logical IDs; they are computed from
the constructs here, never written by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from tasks.formats import OUTPUT_FORMATS, keys

if TYPE_CHECKING:
    from infra.stack import ChuteStack

XRAY = (
    "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no resource-level "
    "permissions"
)
IAM4_BASIC = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def _finding(rule: str, detail: str | None = None) -> str:
    """A finding's ID: the rule, and for rules that report several (IAM4/IAM5) which one."""
    rule_id = f"AwsSolutions::AwsSolutions-{rule}"
    return rule_id if detail is None else f"{rule_id}[{detail}]"


def _objects(bucket: s3.IBucket, keys: str = "*") -> str:
    element = bucket.node.default_child
    assert isinstance(element, CfnElement)
    logical_id = Stack.of(bucket).get_logical_id(element)
    return f"Resource::<{logical_id}.Arn>/{keys}"


def accept(construct: IConstruct, reason: str, rule: str, *details: str) -> None:
    Validations.of(construct).acknowledge(
        *[Acknowledgment(id=_finding(rule, d), reason=reason) for d in details or [None]]
    )


def suppress_reviewed_findings(stack: ChuteStack) -> None:
    s = stack.storage
    buckets_of = {
        "trigger": (),
        "validate": (s.staging,),
        "convert": (s.staging, s.output),
        "archive": (s.staging, s.archive),
        "quarantine": (s.staging, s.quarantine),
    }
    for step, task in stack.steps.items():
        accept(task.role, XRAY, "IAM5", "Resource::*")
        if buckets_of.get(step):
            accept(
                task.role,
                f"the {step} step works on objects named after uploaded files, so the resource "
                "is the bucket's objects; the actions are the exact ones it calls",
                "IAM5",
                *[_objects(b) for b in buckets_of[step]],
            )
    accept(
        stack.steps["quarantine"].role,
        "a rejecting Batch job leaves its error under a fixed prefix, named after the execution "
        "(known at run time): the quarantine step reads it into the report and deletes it",
        "IAM5",
        _objects(s.output, f"{keys.BATCH_FAILURES_PREFIX}*"),
    )
    prefix = stack.props.key_prefix
    accept(
        stack.steps["fanout"].role,
        "the fan-out function reads the staged file (any uploaded key under the key prefix), "
        "works under the fan-out prefix (state, manifests, the parts' objects, named after the "
        "execution) and publishes the file's outputs, whose keys are the uploaded file's plus an "
        "output format's suffix; exact actions only",
        "IAM5",
        _objects(s.staging, f"{prefix}*"),
        _objects(s.output, f"{keys.FANOUT_PREFIX}*"),
        *[_objects(s.output, f"{prefix}*.{f}") for f in OUTPUT_FORMATS],
    )
    accept(
        stack.conversion.job_role,
        "the Batch job reads the staged file and writes its output, both named after the "
        "uploaded file; exact actions only",
        "IAM5",
        _objects(s.staging),
        _objects(s.output),
    )
    accept(
        stack.conversion.container,
        "ecr:GetAuthorizationToken (image pull by the task execution role) supports no "
        "resource-level permissions",
        "IAM5",
        "Resource::*",
    )
    accept(
        stack.workflow.state_machine,
        "batch:DescribeJobs has no resource-level permissions and TerminateJob targets job ids "
        "known only at run time (both used by submitJob.sync); Step Functions' log delivery "
        "actions (logs:*LogDelivery, DescribeResourcePolicies, PutResourcePolicy, "
        "DescribeLogGroups) must use '*'; " + XRAY,
        "IAM5",
        "Resource::*",
    )
    accept(
        stack.workflow.state_machine,
        "the fan-out's Distributed Map reads each round's manifest (ItemReader), written by the "
        "planner under the fan-out prefix, named after the execution (known at run time)",
        "IAM5",
        _objects(s.output, keys.FANOUT_MANIFESTS),
    )
    machine = stack.workflow.state_machine
    executions = (
        "Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
        f"<{stack.get_logical_id(_cfn(machine))}.Name>:*"
    )
    accept(
        stack.fanout_children,
        "the fan-out's Distributed Map runs each part as a child execution of this state machine, "
        "named by Step Functions at run time: Describe/StopExecution on this machine's executions",
        "IAM5",
        executions.replace(":*", "/*"),
    )
    if stack.redrive is not None:
        accept(
            stack.redrive.task.role,
            "the auto-redrive describes and redrives failed executions of this state machine, "
            "which are named at run time (one per file)",
            "IAM5",
            executions,
        )
    accept(
        stack.operators,
        "operators act on any execution (one per file, named at run time) and on any uploaded "
        "or quarantined object; batch:DescribeJobs and cloudwatch:GetMetricData have no "
        "resource-level permissions",
        "IAM5",
        "Resource::*",
        executions,
        *[_objects(b) for b in (s.staging, s.output, s.archive, s.quarantine)],
    )
    _accept_grant_findings(stack)
    for child in stack.node.children:
        if child.node.id.startswith("BucketNotificationsHandler"):
            accept(
                child,
                "aws-cdk-lib's own singleton function that writes the staging bucket's "
                "notification configuration at deploy time; its role is not configurable",
                "IAM4",
                IAM4_BASIC,
            )


def _accept_grant_findings(stack: ChuteStack) -> None:
    grants = stack.grants
    uploads = _objects(stack.storage.staging, f"{stack.props.key_prefix}*")
    accept(
        grants.task.role,
        "the grant function signs presigned PUT/POST requests for a key it picks per request "
        "(<tenant>/<name>_<time>_<uuid>), and S3 checks them against its own role: s3:PutObject "
        "only, on the staging objects under the key prefix",
        "IAM5",
        uploads,
    )
    accept(
        grants.upload_role,
        "each credentials grant assumes this role with a session policy naming its one key; "
        "the role allows the three upload actions on the staging objects under the key prefix",
        "IAM5",
        uploads,
    )
    if grants.user_pool is None:
        return
    accept(
        grants.user_pool,
        "MFA is not required: the pool's users are partner systems and devices that sign in "
        "non-interactively (USER_PASSWORD_AUTH from scripts) with passwords operators set "
        "(14+ characters, all four character classes); self sign-up is off",
        "COG2",
    )
    accept(
        grants.user_pool,
        "threat protection (adaptive authentication, compromised-credential checks) needs the "
        "Plus feature plan, a paid per-user plan; the pool has no self sign-up and the grant "
        "API is throttled and access-logged",
        "COG8",
    )


def _cfn(construct: IConstruct) -> CfnElement:
    element = construct.node.default_child
    assert isinstance(element, CfnElement)
    return element
