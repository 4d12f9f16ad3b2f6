"""Finding the local endpoint without --endpoint-url, and `chute env` (issue 12 items 5, 6)."""

from __future__ import annotations

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
    # GIVEN no endpoint anywhere THEN commands go to AWS (CloudFormation)
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
