"""How many cores this process may use: the CPUs it may run on (affinity) bounded by its
cgroup's CPU quota, not the host's count.

A container (AWS Batch on Fargate or EC2, ECS, Docker) sees every core of its host in
``os.cpu_count()`` but is given a share of them: a CPU quota (cgroup v2 ``cpu.max``, v1
``cpu.cfs_quota_us``/``cpu.cfs_period_us``) or a CPU set (affinity). Running one conversion thread
per host core in a 2-vCPU container on a 64-core host would only add contention; running 2 in a
16-vCPU job would leave 14 idle. The quota is rounded up (1.5 vCPU: 2 threads, the second one
busy half the time) and the result is at least 1.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def available(
    *,
    affinity: Callable[[], set[int]] | None = None,
    cgroup_root: Path = CGROUP_ROOT,
    proc_cgroup: Path = Path("/proc/self/cgroup"),
) -> int:
    """The cores this process may keep busy (>= 1)."""
    cores = _affinity_count(affinity)
    quota = cpu_quota(cgroup_root, _cgroup_paths(proc_cgroup))
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _affinity_count(affinity: Callable[[], set[int]] | None) -> int:
    """The CPUs the process may run on (os.cpu_count() where affinity is unknown: macOS)."""
    if affinity is None and hasattr(os, "sched_getaffinity"):
        affinity = lambda: os.sched_getaffinity(0)  # noqa: E731
    if affinity is not None:
        try:
            return len(affinity())
        except OSError:
            pass
    return os.cpu_count() or 1


def _cgroup_paths(proc_cgroup: Path) -> dict[str, str]:
    """Controller -> this process's cgroup path, from /proc/self/cgroup ("" for cgroup v2)."""
    paths: dict[str, str] = {}
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(","):
            paths[controller] = parts[2]
    return paths


def cpu_quota(root: Path, paths: dict[str, str]) -> float | None:
    """The CPU quota in cores (None: unlimited or unknown). Looks at the process's own cgroup
    and, as a container sees its namespace's root, at the root of the hierarchy."""
    v2 = paths.get("")
    if v2 is not None:
        for base in _candidates(root, v2):
            quota = _read_v2(base / "cpu.max")
            if quota is not None:
                return quota
    v1 = paths.get("cpu")
    if v1 is not None:
        for base in _candidates(root / "cpu", v1):
            quota = _read_v1(base / "cpu.cfs_quota_us", base / "cpu.cfs_period_us")
            if quota is not None:
                return quota
    return None


def _candidates(root: Path, path: str) -> list[Path]:
    inner = root / path.lstrip("/")
    return [inner, root] if inner != root else [root]


def _read_v2(file: Path) -> float | None:
    try:
        fields = file.read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _read_v1(quota_file: Path, period_file: Path) -> float | None:
    try:
        quota, period = quota_file.read_text().strip(), period_file.read_text().strip()
    except OSError:
        return None
    return None if quota.startswith("-") else _ratio(quota, period)


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None
