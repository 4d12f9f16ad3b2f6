"""chute.local.moto_patches.imports: what moto does while it is imported (every region's EC2
offerings, whole service models read for a region list), changed before moto's service modules
are imported."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import botocore.session
import pytest
from botocore.loaders import Loader
from moto.ec2.models import instance_types

from chute.local.moto_patches import FIXES
from chute.local.moto_patches.imports import runtime_regions
from tests.support.moto_patches import without

SERVICES = (
    "s3", "sqs", "sns", "stepfunctions", "lambda", "batch", "ec2", "ecs", "events", "logs",
    "iam", "sts", "cognito-idp", "cloudwatch",
)  # fmt: skip
"""What the embedded runtime's backends ask regions for (moto's BackendDict per service)."""


def _regions(session: botocore.session.Session) -> dict[tuple[str, str], list[str]]:
    return {
        (service, partition): session.get_available_regions(service, partition)
        for service in SERVICES
        for partition in session.get_available_partitions()
    }


def test_regions_are_botocores_without_loading_the_service_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN botocore's answer for every service and partition the runtime uses (fix reverted)
    with without("botocore-regions-without-model"):
        expected = _regions(botocore.session.Session())
    loaded: list[str] = []
    original = Loader.load_service_model

    def spy(self: Loader, service_name: str, type_name: str, api_version: Any = None) -> Any:
        loaded.append(f"{service_name}/{type_name}")
        return original(self, service_name, type_name, api_version)

    monkeypatch.setattr(Loader, "load_service_model", spy)
    # WHEN a fresh session is asked with the fix
    found = _regions(botocore.session.Session())
    # THEN the same regions, and no service model was loaded for them
    assert found == expected
    assert [name for name in loaded if name.endswith("/service-2")] == []


@pytest.mark.canary
def test_canary_botocore_still_loads_the_whole_model_for_a_region_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded: list[str] = []
    original = Loader.load_service_model

    def spy(self: Loader, service_name: str, type_name: str, api_version: Any = None) -> Any:
        loaded.append(f"{service_name}/{type_name}")
        return original(self, service_name, type_name, api_version)

    monkeypatch.setattr(Loader, "load_service_model", spy)
    with without("botocore-regions-without-model"):
        botocore.session.Session().get_available_regions("ecs")
    assert "ecs/service-2" in loaded


def test_ec2_offerings_are_kept_for_the_runtime_regions_only() -> None:
    # GIVEN moto.ec2 imported with the fix (chute.local.moto_patches was imported first)
    assert FIXES["ec2-offerings-runtime-region"].applied
    offerings = instance_types.INSTANCE_TYPE_OFFERINGS
    # THEN the runtime's regions have every offering moto ships, other regions none
    with without("ec2-offerings-runtime-region"):
        from moto.utilities.utils import load_resource

        shipped = load_resource("ec2/resources/instance_type_offerings/region/us-east-1.json")
    assert "us-east-1" in runtime_regions()
    assert len(offerings["region"]["us-east-1"]) == len(shipped) > 100
    others = {r for r, found in offerings["region"].items() if found} - runtime_regions()
    assert others == set()


@pytest.mark.canary
def test_canary_importing_moto_ec2_still_reads_every_regions_offerings() -> None:
    # moto as shipped (a fresh interpreter, without chute's fixes)
    probe = (
        "from moto.ec2.models import instance_types as m;"
        "print(sum(1 for found in m.INSTANCE_TYPE_OFFERINGS['region'].values() if found))"
    )
    regions = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert int(regions) > 1, "ec2-offerings-runtime-region"
