"""End-to-end helpers: a running `chute up`."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Up:
    endpoint: str
    grant_url: str


def launch_up(
    work: Path, port: int, grant_port: int, *, new_session: bool = False
) -> subprocess.Popen[str]:
    """`chute up` as a subprocess in ``work`` (output on its stdout pipe). ``new_session``: its
    own process group, so a test can signal it together with its workers."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chute.cli",
            "up",
            "--port",
            str(port),
            "--grant-port",
            str(grant_port),
        ],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=new_session,
    )
