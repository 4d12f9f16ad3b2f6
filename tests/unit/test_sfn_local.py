"""`make test-sfn-local` without Docker: when it skips and why, and that compose.yaml runs Step
Functions Local with the same MockConfigFile the embedded engine reads."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import yaml

from chute.ops import sfn_local
from chute.ops.workflow_tests import DEFAULT_MOCK_CONFIG, SFN_LOCAL_URL


def runner(failing: set[str]) -> tuple[list[str], sfn_local.Run]:
    calls: list[str] = []

    def run(command: Sequence[str], timeout: float) -> int:
        text = " ".join(command)
        calls.append(text)
        return 1 if any(text.startswith(f) for f in failing) else 0

    return calls, run


@pytest.mark.parametrize(
    ("failing", "reason"),
    [
        ({"docker info"}, "no Docker engine is running"),
        ({"docker compose"}, "no `docker compose` plugin"),
        ({"docker image", "docker pull"}, "is not present and can't be pulled"),
    ],
)
def test_it_skips_saying_why(failing: set[str], reason: str) -> None:
    _, run = runner(failing)
    assert reason in (sfn_local.skip_reason(run, which=lambda _: "/usr/bin/docker") or "")


def test_it_skips_without_a_docker_cli() -> None:
    _, run = runner(set())
    assert sfn_local.skip_reason(run, which=lambda _: None) == "no docker CLI on PATH"


def test_a_missing_image_is_pulled_before_giving_up() -> None:
    calls, run = runner({"docker image"})
    assert sfn_local.skip_reason(run, which=lambda _: "/usr/bin/docker") is None
    assert calls[-1] == f"docker pull {sfn_local.IMAGE}"


def test_main_skips_cleanly_here(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sfn_local, "skip_reason", lambda: "no Docker engine is running")
    assert sfn_local.main([]) == 0
    assert "SKIPPED: no Docker engine is running" in capsys.readouterr().out


def test_compose_runs_step_functions_local_with_the_mock_config() -> None:
    compose = yaml.safe_load(sfn_local.COMPOSE_FILE.read_text())
    (service,) = compose["services"].values()
    assert service["image"].endswith(f":-{sfn_local.IMAGE}}}")
    assert service["ports"] == [f"{SFN_LOCAL_URL.rsplit(':', 1)[1]}:8083"]
    source, target, mode = service["volumes"][0].split(":")
    assert (sfn_local.COMPOSE_FILE.parent / source).resolve() == DEFAULT_MOCK_CONFIG
    assert (service["environment"]["SFN_MOCK_CONFIG"], mode) == (target, "ro")
    assert service["environment"]["AWS_ACCOUNT_ID"] == "123456789012"  # the ARNs substituted


def test_waiting_for_the_endpoint_is_bounded() -> None:
    now = iter(range(100))
    assert not sfn_local.wait_for_endpoint(
        lambda: False, timeout=3, sleep=lambda _: None, clock=lambda: float(next(now))
    )
    assert sfn_local.wait_for_endpoint(lambda: True, sleep=lambda _: None)
