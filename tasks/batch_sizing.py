"""The Batch job sized to the file: vCPU and memory per submission (pure, no I/O).

AWS Batch takes ``containerOverrides.resourceRequirements`` on every SubmitJob, so the state
machine gives each large file a container in proportion to its size instead of one size for
all: the smallest power-of-two vCPU count (within the deployment's bounds) that gives every
vCPU at most ``bytes_per_vcpu`` of the file, and ``memory_per_vcpu_mib`` of memory per vCPU.
The engine runs one conversion thread per vCPU it is given (tasks.cores) and holds a
bounded amount of memory per thread, so memory is stated per vCPU.

Powers of two from 1 to 16 are the vCPU counts Fargate offers above 0.5; a memory of 2,048 to
7,680 MiB per vCPU is valid on Fargate for every one of them (docs/deploy.md has the ladder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

FARGATE_VCPUS = (1, 2, 4, 8, 16)
MEMORY_PER_VCPU_MIB = (2048, 7680)
"""Memory per vCPU that Fargate accepts for every vCPU count above (MiB, inclusive)."""


class SizingError(ValueError):
    """The sizing setting is malformed or outside what Batch on Fargate can run."""


@dataclass(frozen=True)
class BatchSizing:
    min_vcpu: int = 2
    max_vcpu: int = 16
    bytes_per_vcpu: int = 512 << 20
    memory_per_vcpu_mib: int = 2048

    def __post_init__(self) -> None:
        for name in ("min_vcpu", "max_vcpu"):
            if getattr(self, name) not in FARGATE_VCPUS:
                raise SizingError(f"{name}={getattr(self, name)}: one of {FARGATE_VCPUS}")
        if self.min_vcpu > self.max_vcpu:
            raise SizingError(f"min_vcpu={self.min_vcpu} is above max_vcpu={self.max_vcpu}")
        if self.bytes_per_vcpu < 1:
            raise SizingError(f"bytes_per_vcpu={self.bytes_per_vcpu}: 1 or more")
        low, high = MEMORY_PER_VCPU_MIB
        if not low <= self.memory_per_vcpu_mib <= high:
            raise SizingError(
                f"memory_per_vcpu_mib={self.memory_per_vcpu_mib}: {low} to {high} (what Fargate "
                "accepts for every vCPU count)"
            )

    def vcpu_for(self, size: int) -> int:
        """The vCPU count for a file of ``size`` bytes."""
        for vcpu in FARGATE_VCPUS:
            if self.min_vcpu <= vcpu <= self.max_vcpu and size <= vcpu * self.bytes_per_vcpu:
                return vcpu
        return self.max_vcpu

    def resources(self, size: int) -> dict[str, str]:
        """What the state machine puts in the job's ``ResourceRequirements`` (strings, as Batch
        takes them): ``{"vcpu": "4", "memory": "8192"}``."""
        vcpu = self.vcpu_for(size)
        return {"vcpu": str(vcpu), "memory": str(vcpu * self.memory_per_vcpu_mib)}

    def ladder(self) -> list[tuple[int | None, int, int]]:
        """Each rung: (largest file in bytes or None for any, vCPU, memory MiB)."""
        rungs = [v for v in FARGATE_VCPUS if self.min_vcpu <= v <= self.max_vcpu]
        return [
            (
                None if v == self.max_vcpu else v * self.bytes_per_vcpu,
                v,
                v * self.memory_per_vcpu_mib,
            )
            for v in rungs
        ]

    def to_setting(self) -> str:
        return json.dumps(
            {
                "minVcpu": self.min_vcpu,
                "maxVcpu": self.max_vcpu,
                "bytesPerVcpu": self.bytes_per_vcpu,
                "memoryPerVcpuMiB": self.memory_per_vcpu_mib,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_setting(cls, raw: str) -> BatchSizing:
        try:
            data: Any = json.loads(raw)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            return cls(
                min_vcpu=int(data.get("minVcpu", cls.min_vcpu)),
                max_vcpu=int(data.get("maxVcpu", cls.max_vcpu)),
                bytes_per_vcpu=int(data.get("bytesPerVcpu", cls.bytes_per_vcpu)),
                memory_per_vcpu_mib=int(data.get("memoryPerVcpuMiB", cls.memory_per_vcpu_mib)),
            )
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            if isinstance(exc, SizingError):
                raise
            raise SizingError(f"not a Batch sizing ({exc}): {raw!r}") from exc
