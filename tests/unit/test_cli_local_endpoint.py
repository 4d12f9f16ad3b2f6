"""Finding the local endpoint without --endpoint-url, and `chute env` (issue 12 items 5, 6)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chute.cli import app, options


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return tmp_path


def _connected_to(monkeypatch: pytest.MonkeyPatch, target: options.Target) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(options, "connect", lambda **kwargs: seen.update(kwargs) or "deployment")
    target.connect()
    return seen


def test_aws_endpoint_url_is_the_target_when_no_endpoint_or_stack_is_given(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN AWS_ENDPOINT_URL set (the SDKs' convention) WHEN a command connects without options
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4999")
    # THEN it uses that endpoint; an explicit --stack still means AWS
    assert _connected_to(monkeypatch, options.Target())["endpoint_url"] == "http://127.0.0.1:4999"
    assert _connected_to(monkeypatch, options.Target(stack="Chute"))["endpoint_url"] is None


def test_a_chute_up_running_from_this_folder_is_found(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no endpoint anywhere, and a region for AWS THEN commands go to AWS (CloudFormation)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert _connected_to(monkeypatch, options.Target())["endpoint_url"] is None
    # GIVEN a `chute up` serving this folder (its endpoint file names a live process)
    options.write_endpoint_file("http://127.0.0.1:4777", "us-east-1")
    # THEN commands use its endpoint
    assert _connected_to(monkeypatch, options.Target())["endpoint_url"] == "http://127.0.0.1:4777"


def test_an_endpoint_file_of_a_stopped_chute_up_is_ignored(folder: Path) -> None:
    options.ENDPOINT_FILE.parent.mkdir()
    dead = 2**22 + 12345  # above pid_max's default: no such process
    options.ENDPOINT_FILE.write_text(
        f'{{"endpointUrl": "http://127.0.0.1:4777", "region": "us-east-1", "pid": {dead}}}'
    )
    assert options.running_endpoint() is None


def test_chute_env_prints_the_exports_for_aws_clients(folder: Path) -> None:
    # GIVEN a chute up serving this folder
    options.write_endpoint_file("http://127.0.0.1:4777", "us-east-1")
    # WHEN chute env runs
    result = CliRunner().invoke(app, ["env"])
    # THEN it prints what the aws CLI and SDKs need (endpoint, credentials, region)
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:4777" in lines
    assert "export AWS_ACCESS_KEY_ID=chute" in lines
    assert "export AWS_SECRET_ACCESS_KEY=chute" in lines
    assert "export AWS_DEFAULT_REGION=us-east-1" in lines


def _no_aws_region(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(folder / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "no-aws-credentials"))


def test_without_chute_up_or_an_aws_region_commands_say_what_to_start(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no `chute up` here, no AWS_ENDPOINT_URL and no AWS region anywhere
    _no_aws_region(monkeypatch, folder)
    # WHEN a user runs chute status
    result = CliRunner().invoke(app, ["status"])
    # THEN it says that no chute up runs here and how to name AWS instead (not a region error)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "no `chute up` is running from this folder" in said
    assert "--stack" in said and "You must specify a region" not in said


class _NotAws(http.server.BaseHTTPRequestHandler):
    """A server that answers like the web console does to an AWS request: 403 and HTML."""

    def do_POST(self) -> None:
        self.send_response(403)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html><body>forbidden</body></html>")

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def not_aws() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotAws)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()


def test_an_endpoint_that_is_not_aws_or_not_https_is_named_for_what_it_is(not_aws: int) -> None:
    # WHEN the console's port is given as the endpoint THEN one line says what it probably is
    result = CliRunner().invoke(app, ["status", "--endpoint-url", f"http://127.0.0.1:{not_aws}"])
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "not as an AWS endpoint (HTTP 403)" in said and "<html" not in said
    # WHEN the endpoint is given with https THEN it says the runtime serves plain http
    result = CliRunner().invoke(app, ["status", "--endpoint-url", f"https://127.0.0.1:{not_aws}"])
    assert result.exit_code == 2
    assert f"serves plain http (http://127.0.0.1:{not_aws})" in " ".join(result.output.split())


def test_chute_env_without_chute_up_warns_in_a_shell_comment(folder: Path) -> None:
    # GIVEN no chute up WHEN eval "$(chute env 2>&1)" is what a user runs
    result = CliRunner().invoke(app, ["env"])
    # THEN the warning is a comment with nothing a shell would execute
    (warning,) = [line for line in result.output.splitlines() if "no chute up" in line]
    assert warning.startswith("#") and "`" not in warning and "$(" not in warning
