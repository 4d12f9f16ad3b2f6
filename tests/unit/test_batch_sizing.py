"""The Batch job sized to the file: the ladder, the setting, Validate's plan, the local runner."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chute.local.batch_jobs import job_cpus, job_vcpus
from tasks import names
from tasks.batch_sizing import BatchSizing, SizingError
from tasks.settings import SettingsError, ValidateSettings

GiB = 1 << 30
MiB = 1 << 20


@pytest.mark.parametrize(
    ("size", "vcpu", "memory"),
    [
        (0, 2, 4096),
        (1 * GiB, 2, 4096),
        (1 * GiB + 1, 4, 8192),
        (2 * GiB, 4, 8192),
        (3 * GiB, 8, 16384),
        (8 * GiB, 16, 32768),
        (100 * GiB, 16, 32768),  # the top rung takes everything above
    ],
)
def test_default_ladder(size: int, vcpu: int, memory: int) -> None:
    assert BatchSizing().resources(size) == {"vcpu": str(vcpu), "memory": str(memory)}


def test_bounds_and_memory_per_vcpu() -> None:
    sizing = BatchSizing(min_vcpu=4, max_vcpu=8, bytes_per_vcpu=100 * MiB, memory_per_vcpu_mib=3072)
    assert sizing.resources(1) == {"vcpu": "4", "memory": "12288"}
    assert sizing.resources(500 * MiB) == {"vcpu": "8", "memory": "24576"}
    assert sizing.resources(10 * GiB) == {"vcpu": "8", "memory": "24576"}
    assert sizing.ladder() == [(400 * MiB, 4, 12288), (None, 8, 24576)]


def test_one_rung() -> None:
    sizing = BatchSizing(min_vcpu=2, max_vcpu=2)
    assert sizing.ladder() == [(None, 2, 4096)]
    assert sizing.resources(50 * GiB) == {"vcpu": "2", "memory": "4096"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_vcpu": 3}, "min_vcpu=3"),
        ({"max_vcpu": 32}, "max_vcpu=32"),
        ({"min_vcpu": 8, "max_vcpu": 4}, "above max_vcpu"),
        ({"bytes_per_vcpu": 0}, "bytes_per_vcpu"),
        ({"memory_per_vcpu_mib": 1024}, "memory_per_vcpu_mib=1024"),
        ({"memory_per_vcpu_mib": 8192}, "memory_per_vcpu_mib=8192"),
    ],
)
def test_invalid_sizings_are_named(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(SizingError, match=message):
        BatchSizing(**kwargs)


def test_setting_round_trip() -> None:
    sizing = BatchSizing(min_vcpu=1, max_vcpu=4, bytes_per_vcpu=123, memory_per_vcpu_mib=4096)
    assert BatchSizing.from_setting(sizing.to_setting()) == sizing
    assert BatchSizing.from_setting("{}") == BatchSizing()


@pytest.mark.parametrize("raw", ["nope", "[1]", '{"minVcpu": "x"}', '{"maxVcpu": 5}'])
def test_bad_setting_is_a_settings_error(raw: str) -> None:
    env = {names.ENV_OUTPUT_BUCKET: "out", names.ENV_BATCH_SIZING: raw}
    with pytest.raises(SettingsError, match=names.ENV_BATCH_SIZING):
        ValidateSettings.from_mapping(env)


def test_validate_settings_default_and_given() -> None:
    env = {names.ENV_OUTPUT_BUCKET: "out"}
    assert ValidateSettings.from_mapping(env).batch_sizing == BatchSizing()
    given = BatchSizing(max_vcpu=8)
    env[names.ENV_BATCH_SIZING] = given.to_setting()
    assert ValidateSettings.from_mapping(env).batch_sizing == given


def _job(overrides: dict[str, object], definition: list[dict[str, str]] | None = None) -> object:
    return SimpleNamespace(
        container_overrides=overrides,
        job_definition=SimpleNamespace(
            container_properties={"resourceRequirements": definition or []}
        ),
    )


def test_local_job_takes_the_submitted_vcpus() -> None:
    """As the state machine submits them (ASL casing) and as boto3 does (API casing)."""
    asl = {"ResourceRequirements": [{"Type": "VCPU", "Value": "4"}, {"Type": "MEMORY"}]}
    api = {"resourceRequirements": [{"type": "MEMORY", "value": "2048"}, {"type": "VCPU"}]}
    definition = [{"type": "VCPU", "value": "2"}]
    assert job_vcpus(_job(asl, definition)) == 4
    assert job_vcpus(_job({}, definition)) == 2
    assert job_vcpus(_job({})) is None
    assert job_vcpus(_job({"resourceRequirements": [{"type": "VCPU", "value": "0.5"}]})) == 1
    assert job_vcpus(_job(api)) is None  # a VCPU entry without a value: unknown


def test_local_job_cpus() -> None:
    host = {0, 1, 2, 3}
    assert job_cpus(2, host) == {0, 1}
    assert job_cpus(4, host) is None
    assert job_cpus(16, host) is None  # more than the host has: all of it
    assert job_cpus(None, host) is None
