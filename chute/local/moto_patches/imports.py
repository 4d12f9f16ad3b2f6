"""What moto does while it is imported: the work it does then for every service, each time the
embedded runtime starts. Importing ``moto.batch`` (which imports ``moto.ec2``) took 1.2 s and
198 MiB: every region's EC2 instance type offerings are read (54 MiB of JSON, for EC2 calls
chute never makes), and each backend asks botocore for the service's regions, which loads the
service's whole model to read one field (EC2's alone, ~0.45 s). These fixes are applied as
this package is imported, before any of moto's service modules (see ``__init__``).
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path
from typing import Any

import botocore.session
from moto.utilities import utils as moto_utils

from chute.local.moto_patches.seam import Fixes, Kind

FIXES = Fixes()

_ENDPOINT_PREFIX = re.compile(rb'"endpointPrefix"\s*:\s*"([^"]+)"')
HEAD_BYTES = 8192
"""A service model's metadata (where ``endpointPrefix`` is) comes first in its file."""


def _endpoint_prefix(session: botocore.session.Session, service: str) -> str | None:
    """``metadata.endpointPrefix`` of ``service``'s model, read from the head of its file (None:
    not found there)."""
    loader = session.get_component("data_loader")
    try:
        version = loader.determine_latest_version(service, "service-2")
    except Exception:
        return None
    for root in loader.search_paths:
        base = Path(root) / service / version / "service-2.json"
        for path, opener in ((base.with_name(base.name + ".gz"), gzip.open), (base, open)):
            if path.exists():
                with opener(path, "rb") as model:
                    found = _ENDPOINT_PREFIX.search(model.read(HEAD_BYTES))
                return found.group(1).decode() if found else None
    return None


@FIXES.declare(
    "botocore-regions-without-model",
    Kind.SPEED,
    botocore.session.Session,
    "get_available_regions",
    why="a backend's regions loaded the service's whole model (EC2: ~0.45 s, ~20 MiB kept)",
)
def _available_regions(original: Any) -> Any:
    def get_available_regions(
        self: botocore.session.Session,
        service_name: str,
        partition_name: str = "aws",
        allow_non_regional: bool = False,
    ) -> list[str]:
        prefix = _endpoint_prefix(self, service_name)
        if prefix is None:
            return list(original(self, service_name, partition_name, allow_non_regional))
        resolver = self._get_internal_component("endpoint_resolver")
        return list(resolver.get_available_endpoints(prefix, partition_name, allow_non_regional))

    return get_available_regions


def runtime_regions() -> set[str]:
    """The regions the embedded runtime serves EC2 offerings for: its default and the
    environment's."""
    named = {os.environ.get("AWS_REGION"), os.environ.get("AWS_DEFAULT_REGION")}
    return {"us-east-1"} | {r for r in named if r}


@FIXES.declare(
    "ec2-offerings-runtime-region",
    Kind.MEMORY,
    moto_utils,
    "load_resource",
    why="importing moto.ec2 reads every region's instance type offerings (54 MiB)",
)
def _offerings_of_runtime_regions(original: Any) -> Any:
    regions = runtime_regions()

    def load_resource(resource: str, *args: Any, **kwargs: Any) -> Any:
        if "instance_type_offerings/" in resource:
            region = resource.rsplit("/", 1)[-1].split(".")[0]
            if region not in regions:
                return []
        return original(resource, *args, **kwargs)

    return load_resource


def apply_before_moto_imports() -> None:
    """Applied once, before moto's service modules are imported (they do this work then)."""
    for fix in FIXES:
        fix.apply()
