"""``make test-sfn-local``: the workflow's MockConfigFile cases on Step Functions Local in Docker
(``compose.yaml``: ``amazon/aws-stepfunctions-local`` with the file mounted, SFN_MOCK_CONFIG),
through the same runner as the embedded engine (chute.ops.workflow_tests).

Skipped, with the reason, when there is no Docker CLI, engine, compose plugin or image (the
case on the project's machines: no image can be pulled there). AWS documents Step Functions
Local as unsupported and without feature parity; the embedded engine and TestState are the
supported ways (docs/testing-workflows.md).

``python -m chute.ops.sfn_local [--keep]``; exit 0 when every case passes or the run is skipped.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "compose.yaml"
IMAGE = "amazon/aws-stepfunctions-local:latest"
"""compose.yaml's default image (SFN_LOCAL_IMAGE overrides it there)."""
PULL_TIMEOUT_SECONDS = 300

Run = Callable[[Sequence[str], float], int]
"""(command, timeout seconds) -> exit code (124 on timeout)"""


def run_command(command: Sequence[str], timeout: float) -> int:
    try:
        return subprocess.run(
            list(command), capture_output=True, timeout=timeout, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        return 124
    except OSError:
        return 127


def skip_reason(
    run: Run = run_command,
    which: Callable[[str], str | None] = shutil.which,
    image: str = IMAGE,
) -> str | None:
    """Why Step Functions Local can't run here, or None when it can (the image is present or
    was just pulled)."""
    if which("docker") is None:
        return "no docker CLI on PATH"
    if run(["docker", "info"], 30) != 0:
        return "no Docker engine is running (`docker info` fails)"
    if run(["docker", "compose", "version"], 30) != 0:
        return "no `docker compose` plugin"
    if run(["docker", "image", "inspect", image], 30) != 0 and (
        run(["docker", "pull", image], PULL_TIMEOUT_SECONDS) != 0
    ):
        return f"the image {image} is not present and can't be pulled"
    return None


def wait_for_endpoint(
    probe: Callable[[], bool],
    timeout: float = 60,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    deadline = clock() + timeout
    while clock() < deadline:
        if probe():
            return True
        sleep(0.5)
    return False


def main(argv: Sequence[str] = ()) -> int:
    from chute.ops import workflow_tests as wt

    keep = "--keep" in argv
    reason = skip_reason()
    if reason is not None:
        print(
            f"test-sfn-local: SKIPPED: {reason}. Step Functions Local runs in Docker "
            "(compose.yaml); the same cases run without Docker in `make test` "
            "(tests/workflow/test_mock_cases.py, `chute test-workflow`)."
        )
        return 0
    compose = ["docker", "compose", "-f", str(COMPOSE_FILE)]
    if run_command([*compose, "up", "-d"], 300) != 0:
        print("test-sfn-local: FAILED: `docker compose up -d` failed", file=sys.stderr)
        return 1
    try:
        suite = wt.Suite.load()

        def ready() -> bool:
            try:
                wt.endpoint_target(suite, wt.SFN_LOCAL_URL)
            except wt.TargetError:
                return False
            return True

        if not wait_for_endpoint(ready):
            print(f"test-sfn-local: FAILED: nothing answers on {wt.SFN_LOCAL_URL}", file=sys.stderr)
            return 1
        sfn, arn = wt.endpoint_target(suite, wt.SFN_LOCAL_URL)
        results = wt.run_cases(sfn, arn, suite, timeout=600)
        for r in results:
            print(f"{'ok  ' if r.ok else 'FAIL'} {r.name} {'; '.join(r.problems)}")
        failed = [r.name for r in results if not r.ok]
        print(f"test-sfn-local: {len(results) - len(failed)}/{len(results)} cases as expected")
        return 1 if failed else 0
    finally:
        if not keep:
            run_command([*compose, "down"], 120)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
