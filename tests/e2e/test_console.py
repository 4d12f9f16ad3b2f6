"""`chute up` serves the web console at the URL its banner prints; `chute console` serves the
same console over a running endpoint."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlsplit

from chute.local.embedded import free_port


def _get(url: str, wait: float = 30) -> str:
    """The page at ``url``, waiting (bounded) for the server to listen."""
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                return str(answer.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_chute_up_serves_the_console_on_its_port_plus_4(endpoint: str) -> None:
    port = urlsplit(endpoint).port or 0
    page = _get(f"http://127.0.0.1:{port + 4}/")  # started once the runtime is up
    assert "chute console" in page and endpoint in page
    assert 'data-testid="files"' in _get(f"http://127.0.0.1:{port + 4}/fragments/list")


def test_chute_console_serves_over_a_running_endpoint(endpoint: str) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chute.cli",
            "console",
            "--endpoint-url",
            endpoint,
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"chute console on http://127.0.0.1:{port}/" in line, line
        page = _get(f"http://127.0.0.1:{port}/fragments/list")
        assert 'data-testid="counts"' in page
    finally:
        process.terminate()
        process.wait(timeout=30)
