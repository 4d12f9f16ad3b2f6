"""`chute run` as a person runs it: a subprocess on the bundled samples."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chute.local.embedded import free_port

REPO = Path(__file__).resolve().parents[2]
CHUTE = [sys.executable, "-m", "chute.cli"]


def chute(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CHUTE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def samples_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    work = tmp_path_factory.mktemp("run")
    result = chute(
        "run",
        str(REPO / "samples"),
        "--large-threshold",
        "100000",
        "--expect-quarantine",
        "broken.csv",
        "--port",
        str(free_port()),
        "--out",
        str(work / "out"),
        "--json",
        cwd=work,
    )
    return result, work


def test_samples_take_every_path_and_exit_zero(samples_run) -> None:
    result, _ = samples_run
    assert result.returncode == 0, result.stderr + result.stdout
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {
        "samples/orders.csv",
        "samples/inventory.tsv",
        "samples/readings.csv.gz",
        "samples/clickstream-large.csv",
        "samples/broken.csv",
    }
    assert rows["samples/clickstream-large.csv"]["route"] == "batch"
    assert rows["samples/orders.csv"]["route"] == "lambda"
    assert rows["samples/broken.csv"]["outcome"] == "QUARANTINED"
    assert rows["samples/broken.csv"]["error"] == "MalformedContent"
    for key in ("samples/orders.csv", "samples/inventory.tsv", "samples/readings.csv.gz"):
        assert rows[key]["outcome"] == "SUCCEEDED"


def test_outputs_are_downloaded(samples_run) -> None:
    _, work = samples_run
    orders = (work / "out" / "samples" / "orders.csv.jsonl").read_text().splitlines()
    assert json.loads(orders[1]) == {
        "id": 2,
        "name": "Bob, Jr.",
        "amount": 7.25,
        "created_at": "2026-11-02T11:30:00Z",
    }
    readings = (work / "out" / "samples" / "readings.csv.jsonl").read_text().splitlines()
    assert len(readings) == 500


def test_unexpected_quarantine_makes_the_run_fail(tmp_path: Path) -> None:
    result = chute(
        "run", str(REPO / "samples" / "broken.csv"), "--port", str(free_port()), cwd=tmp_path
    )
    assert result.returncode == 1
    assert "QUARANTINED" in result.stdout
    assert "MalformedContent" in result.stdout


def test_missing_path_is_a_clear_usage_error(tmp_path: Path) -> None:
    result = chute("run", "does-not-exist.csv", cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert "does-not-exist.csv: no such file or directory" in result.stderr


def test_unreachable_endpoint_is_a_clear_usage_error(tmp_path: Path) -> None:
    # GIVEN an endpoint where nothing listens
    url = f"http://127.0.0.1:{free_port()}"
    # WHEN chute run is pointed at it
    result = chute("run", str(REPO / "samples" / "orders.csv"), "--endpoint-url", url, cwd=tmp_path)
    # THEN it says so (over the same Deployment as the operations commands), no traceback
    assert result.returncode == 2, result.stderr
    assert f"cannot reach the endpoint {url}" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = chute(
            "run", str(REPO / "samples" / "orders.csv"), "--port", str(port), cwd=tmp_path
        )
    assert result.returncode == 3
    assert f"port {port}" in result.stderr and "already in use" in result.stderr


def test_up_needs_a_free_port_of_its_own_for_the_grant_api(tmp_path: Path) -> None:
    port = free_port()
    same = chute("up", "--port", str(port), "--grant-port", str(port), cwd=tmp_path)
    assert same.returncode == 3
    assert "grant API needs a port of its own" in same.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = chute("up", "--port", str(port), "--grant-port", str(taken), cwd=tmp_path)
    assert result.returncode == 3
    assert f"port {taken}" in result.stderr and "--grant-port" in result.stderr
