"""What every command shares: the exit-code table and the clear-error exit (from ``codes``), and
the target options (``--endpoint-url/--stack/--profile/--region``) resolved into one
``Deployment``."""

from __future__ import annotations

import functools
import inspect
import json
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import typer

from chute.cli.codes import Exit as Exit  # re-exported: the commands import them from here
from chute.cli.codes import fail as fail
from chute.ops.deployment import Deployment, DeploymentError, connect

ENDPOINT_FILE = Path(".chute") / "endpoint.json"
"""Written by a running `chute up` in the folder it serves (removed when it stops)."""
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "chute", "AWS_SECRET_ACCESS_KEY": "chute"}


def write_endpoint_file(endpoint_url: str, region: str, path: Path = ENDPOINT_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"endpointUrl": endpoint_url, "region": region, "pid": os.getpid()}
    path.write_text(json.dumps(document), encoding="utf-8")


def running_endpoint(path: Path = ENDPOINT_FILE) -> dict[str, str] | None:
    """The endpoint of a `chute up` running from this folder (None: none is)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        os.kill(int(document["pid"]), 0)  # still running?
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {"endpointUrl": str(document["endpointUrl"]), "region": str(document["region"])}


def local_environment(endpoint_url: str, region: str) -> dict[str, str]:
    """What any AWS client (aws CLI, SDKs) needs to talk to the embedded runtime."""
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        **LOCAL_CREDENTIALS,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


def default_endpoint() -> str | None:
    """The local endpoint a command uses when given none: ``AWS_ENDPOINT_URL`` (the AWS SDKs'
    own convention), else a `chute up` running from this folder."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return os.environ["AWS_ENDPOINT_URL"]
    found = running_endpoint()
    return found["endpointUrl"] if found else None


def aws_region_configured() -> bool:
    """Whether the AWS SDK finds a region (environment, profile or config file) on its own."""
    import boto3

    return bool(boto3.Session().region_name)


@dataclass(frozen=True)
class Target:
    """Where a command's pipeline runs: the embedded runtime's endpoint or an AWS stack."""

    endpoint_url: Annotated[
        str | None, typer.Option(help="Embedded runtime endpoint (e.g. http://127.0.0.1:4566).")
    ] = None
    stack: Annotated[str | None, typer.Option(help="AWS: stack name (default Chute).")] = None
    profile: Annotated[str | None, typer.Option(help="AWS: profile.")] = None
    region: Annotated[str | None, typer.Option(help="AWS: region.")] = None

    def connect(self) -> Deployment:
        """The one ``Deployment`` of this target; a clear error (exit 2) if it can't be reached.
        Without --endpoint-url or --stack, a local endpoint is found by ``default_endpoint``."""
        endpoint_url = self.endpoint_url
        if endpoint_url is None and self.stack is None and self.profile is None:
            endpoint_url = default_endpoint()
            if endpoint_url is None and self.region is None and not aws_region_configured():
                raise fail(
                    DeploymentError(
                        "no `chute up` is running from this folder, and no AWS deployment was"
                        " named: start `chute up` here (or pass --endpoint-url), or name the"
                        " stack with --stack/--region (or a profile with a region)"
                    )
                )
        try:
            return connect(
                endpoint_url=endpoint_url,
                stack=self.stack,
                profile=self.profile,
                region=self.region,
            )
        except DeploymentError as exc:
            raise fail(exc) from exc


TARGET = Target()
"""A command's ``target`` default; ``with_target`` passes the one given on the command line."""

_TARGET_NAMES = tuple(f.name for f in fields(Target))
_TARGET_HINTS = inspect.get_annotations(Target, eval_str=True)


def with_target(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the target options: its ``target: Target`` parameter becomes
    ``--endpoint-url/--stack/--profile/--region`` (last, in that order) on the command line."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "target"]
    shared = [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_TARGET_HINTS[name]
        )
        for name in _TARGET_NAMES
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        target = Target(**{name: kwargs.pop(name, None) for name in _TARGET_NAMES})
        command(*args, target=target, **kwargs)

    parameters = own + shared
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def serve_until_stopped() -> None:
    """Block a serving command (``up``, ``console``) until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1):
            pass
    except KeyboardInterrupt:
        pass
