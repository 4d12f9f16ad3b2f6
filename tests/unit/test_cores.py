"""tasks.cores: the engine's thread count follows the container's CPU share."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks import cores


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _host(cpus: int) -> set[int]:
    return set(range(cpus))


def available(tmp_path: Path, cgroup: str, cpus: int = 64) -> int:
    proc = tmp_path / "proc-cgroup"
    proc.write_text(cgroup)
    return cores.available(
        affinity=lambda: _host(cpus), cgroup_root=tmp_path / "cg", proc_cgroup=proc
    )


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("200000 100000", 2), ("1600000 100000", 16), ("150000 100000", 2), ("50000 100000", 1)],
)
def test_cgroup_v2_quota_bounds_a_large_host(tmp_path: Path, cpu_max: str, expected: int) -> None:
    _write(tmp_path / "cg/ecs/task/cpu.max", cpu_max)
    assert available(tmp_path, "0::/ecs/task\n") == expected


def test_cgroup_v2_unlimited_uses_affinity(tmp_path: Path) -> None:
    _write(tmp_path / "cg/cpu.max", "max 100000")
    assert available(tmp_path, "0::/\n", cpus=8) == 8


def test_cgroup_v2_namespace_root(tmp_path: Path) -> None:
    """Inside a container's cgroup namespace the path is "/" and the quota is at the root."""
    _write(tmp_path / "cg/cpu.max", "400000 100000")
    assert available(tmp_path, "0::/\n") == 4


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    _write(tmp_path / "cg/cpu/docker/abc/cpu.cfs_quota_us", "400000")
    _write(tmp_path / "cg/cpu/docker/abc/cpu.cfs_period_us", "100000")
    assert available(tmp_path, "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n") == 4


def test_cgroup_v1_unlimited(tmp_path: Path) -> None:
    _write(tmp_path / "cg/cpu/cpu.cfs_quota_us", "-1")
    _write(tmp_path / "cg/cpu/cpu.cfs_period_us", "100000")
    assert available(tmp_path, "1:cpu:/\n", cpus=3) == 3


def test_affinity_smaller_than_quota_wins(tmp_path: Path) -> None:
    _write(tmp_path / "cg/cpu.max", "800000 100000")
    assert available(tmp_path, "0::/\n", cpus=2) == 2


@pytest.mark.parametrize("content", ["", "garbage", "0::/x\n", "1:cpu:/y\n"])
def test_no_or_unreadable_cgroup_falls_back_to_affinity(tmp_path: Path, content: str) -> None:
    assert available(tmp_path, content, cpus=5) == 5


def test_malformed_quota_is_ignored(tmp_path: Path) -> None:
    _write(tmp_path / "cg/cpu.max", "lots 100000")
    assert available(tmp_path, "0::/\n", cpus=6) == 6


def test_this_machine() -> None:
    import os

    assert 1 <= cores.available() <= (os.cpu_count() or 1)
