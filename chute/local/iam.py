"""IAM as deployed, enforced in the embedded runtime (docs/decisions.md 2026-12-06).

Each local Lambda worker and Batch job process gets the identity policy the CDK stack gives its
role (``iam_policies.json``, extracted from the synthesized template by infra/local_policies.py,
placeholders filled with the local stack's names). Every AWS call the handler makes through
botocore is mapped to the IAM action(s) and resource ARN(s) AWS would authorize, evaluated
against that policy, and refused as AWS refuses it: a ``ClientError`` with code ``AccessDenied``
(``AccessDeniedException`` for JSON services) and HTTP 403, before the request leaves.

Evaluation (AWS's documented logic for one identity policy, no resource policies or boundaries):
an explicit Deny wins; else an Allow whose Action/NotAction, Resource/NotResource and Condition
all match allows; else the implicit deny. Actions match case-insensitively with ``*``/``?``;
resources case-sensitively. Conditions: the String*, Arn*, Bool and Null operators (and
``...IfExists``); any other operator never matches (an Allow with it allows nothing).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

POLICIES_FILE = Path(__file__).with_name("iam_policies.json")
ENV_POLICY = "CHUTE_LOCAL_IAM_POLICY"  # a file with the worker's statements (JSON)
ENV_PRINCIPAL = "CHUTE_LOCAL_IAM_PRINCIPAL"
ENV_SWITCH = "CHUTE_LOCAL_IAM"  # "0" / "off": no enforcement (tests, `chute up --no-iam`)

Statement = Mapping[str, Any]


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get(ENV_SWITCH, "1")
    return value.strip().lower() not in ("0", "off", "false", "no")


# --- the policies -----------------------------------------------------------------------------
def load_policies(values: Mapping[str, str], path: Path = POLICIES_FILE) -> dict[str, list[Any]]:
    """step (and ``"batch"``) -> its role's statements, ``${Placeholder}``s filled from
    ``values`` (unknown ones are left as they are: they match no real ARN)."""
    raw = path.read_text(encoding="utf-8")
    filled = re.sub(r"\$\{(\w+)\}", lambda m: values.get(m[1], m[0]), raw)
    return dict(json.loads(filled))


# --- evaluation -------------------------------------------------------------------------------
def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value or []]


def _like(pattern: str, value: str, *, case: bool) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern.replace("[", "[[]"))


def _any_like(patterns: Any, value: str, *, case: bool) -> bool:
    return any(_like(p, value, case=case) for p in _listed(patterns))


def _equal(wanted: str, actual: str) -> bool:
    return wanted == actual


def _equal_ignore_case(wanted: str, actual: str) -> bool:
    return wanted.lower() == actual.lower()


def _like_case(wanted: str, actual: str) -> bool:
    return _like(wanted, actual, case=True)


def _condition_matches(operator: str, key: str, wanted: Any, context: Mapping[str, Any]) -> bool:
    if_exists = operator.endswith("IfExists")
    op = operator.removesuffix("IfExists")
    if op == "Null":
        return (key not in context) == (str(_listed(wanted)[0]).lower() == "true")
    if key not in context:
        return if_exists or op.startswith(("StringNot", "ArnNot"))
    actual = [str(v) for v in _listed(context[key])]
    tests: dict[str, Callable[[str, str], bool]] = {
        "StringEquals": _equal,
        "StringEqualsIgnoreCase": _equal_ignore_case,
        "StringLike": _like_case,
        "ArnEquals": _equal,
        "ArnLike": _like_case,
        "Bool": _equal_ignore_case,
    }
    negated = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike"}
    negated |= {"ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}
    if op in tests:
        return any(tests[op](w, a) for w in _listed(wanted) for a in actual)
    if op in negated:
        positive = tests[negated[op]]
        return not any(positive(w, a) for w in _listed(wanted) for a in actual)
    return False  # an operator chute doesn't know: the statement applies to nothing


def _matches(statement: Statement, action: str, resource: str, context: Mapping[str, Any]) -> bool:
    if "Action" in statement:
        if not _any_like(statement["Action"], action, case=False):
            return False
    elif _any_like(statement.get("NotAction", []), action, case=False):
        return False
    if "Resource" in statement:
        if not _any_like(statement["Resource"], resource, case=True):
            return False
    elif "NotResource" in statement and _any_like(statement["NotResource"], resource, case=True):
        return False
    for operator, pairs in (statement.get("Condition") or {}).items():
        for key, wanted in pairs.items():
            if not _condition_matches(operator, key, wanted, context):
                return False
    return True


def evaluate(
    statements: Iterable[Statement],
    action: str,
    resource: str,
    context: Mapping[str, Any] | None = None,
) -> str:
    """``"Allow"``, ``"ExplicitDeny"`` or ``"ImplicitDeny"`` for one action on one resource."""
    allowed = False
    for statement in statements:
        if not _matches(statement, action, resource, context or {}):
            continue
        if statement.get("Effect") == "Deny":
            return "ExplicitDeny"
        allowed = allowed or statement.get("Effect") == "Allow"
    return "Allow" if allowed else "ImplicitDeny"


# --- enforcement in a worker process ----------------------------------------------------------
def access_denied(service: str, operation: str, action: str, resource: str, principal: str) -> Any:
    """The ClientError AWS answers a call the identity policy doesn't allow with."""
    from botocore.exceptions import ClientError

    code = "AccessDenied" if service in ("s3", "sts", "sqs") else "AccessDeniedException"
    message = (
        f"User: {principal} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )
    if service == "s3" and operation in ("HeadObject", "HeadBucket"):
        code, message = "403", "Forbidden"  # a HEAD response has no body: S3 says only this
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 403},
    }
    return ClientError(response, operation)


class PolicyFile:
    """The statements in a file, read again when it changes (`EmbeddedAws.set_policy`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._statements: list[Any] = []

    def statements(self) -> list[Any]:
        found = self.path.stat()  # each write is a new file (renamed into place): a new inode
        stamp = (found.st_ino, found.st_mtime_ns, found.st_size)
        if stamp != self._stamp:
            self._statements = list(json.loads(self.path.read_text(encoding="utf-8")))
            self._stamp = stamp
        return self._statements


def install(statements: Callable[[], list[Any]], principal: str) -> None:
    """Every botocore call of this process is authorized against ``statements()`` first."""
    from botocore.client import BaseClient

    from chute.local.iam_requests import authorizations

    original = BaseClient._make_api_call
    if getattr(original, "chute_iam", False):
        return

    def _make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        service = self.meta.service_model.service_name
        region = self.meta.region_name or "us-east-1"
        account = principal.split(":")[4] if principal.count(":") >= 5 else "123456789012"
        policy = statements()
        for action, resource in authorizations(
            service, operation_name, api_params, region=region, account=account
        ):
            if evaluate(policy, action, resource) != "Allow":
                raise access_denied(service, operation_name, action, resource, principal)
        return original(self, operation_name, api_params)

    _make_api_call.chute_iam = True  # type: ignore[attr-defined]
    BaseClient._make_api_call = _make_api_call


def install_from_environment(environ: Mapping[str, str] | None = None) -> bool:
    """What a worker process calls first: enforce the policy the runtime gave it, if any."""
    env = os.environ if environ is None else environ
    path = env.get(ENV_POLICY)
    if not path or not enabled(env):
        return False
    principal = env.get(ENV_PRINCIPAL, "arn:aws:sts::123456789012:assumed-role/local")
    install(PolicyFile(Path(path)).statements, principal)
    return True


# --- what the embedded runtime gives each process ----------------------------------------------
def local_values(resources: Any) -> dict[str, str]:
    """The placeholders of ``iam_policies.json`` for the local stack (chute.ops.resources)."""
    r = resources
    return {
        "StagingBucket": r.staging_bucket,
        "OutputBucket": r.output_bucket,
        "ArchiveBucket": r.archive_bucket,
        "QuarantineBucket": r.quarantine_bucket,
        "StateMachineArn": r.state_machine_arn,
        "StateMachineName": r.state_machine_name,
        "EventsQueueArn": f"arn:aws:sqs:{r.region}:{r.account}:{r.queue_name}",
        "UploadRoleArn": r.upload_role_arn,
        "EventBusArn": r.event_bus_arn,
        "Region": r.region,
        "Account": r.account,
    }


def write_policy(directory: Path, step: str, statements: list[Any]) -> Path:
    """``step``'s statements into ``directory/<step>.json`` (replaced whole: a worker reading
    it never sees half of it)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{step}.json"
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(statements), encoding="utf-8")
    partial.replace(path)
    return path


def process_environment(directory: Path | None, step: str, account: str) -> dict[str, str]:
    """The variables that make a worker of ``step`` (or ``"batch"``) enforce its role's policy
    (written by :func:`write_policy`); none for a step without one or with enforcement off
    (``directory`` None)."""
    if directory is None or not (directory / f"{step}.json").is_file():
        return {}
    principal = f"arn:aws:sts::{account}:assumed-role/chute-{step}/local"
    return {ENV_POLICY: str(directory / f"{step}.json"), ENV_PRINCIPAL: principal}


def _run_module() -> None:
    """``python -m chute.local.iam MODULE ARGS...``: enforce, then run MODULE as ``-m`` would
    (the Batch job's ``python -m batch``)."""
    import runpy
    import sys

    install_from_environment()
    module, *rest = sys.argv[1:]
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _run_module()
