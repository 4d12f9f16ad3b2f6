"""Every fix of this package by name (``FIXES``), in the order they are applied, and
``apply_all`` / ``revert_all`` for the embedded runtime."""

from __future__ import annotations

from chute.local.moto_patches import (
    distributed_map,
    events,
    imports,
    lambda_and_batch,
    mock_configs,
    redrive,
    s3,
    s3_bodies,
    server,
    sqs,
    stepfunctions,
)
from chute.local.moto_patches.seam import Fix

SERVICES = (
    imports,
    lambda_and_batch,
    server,
    stepfunctions,
    distributed_map,
    s3,
    s3_bodies,
    sqs,
    events,
    mock_configs,
    redrive,
)
"""The modules in the order their fixes are applied. Fixes of one attribute stack, the later
outside: sfn-mock-config (mock_configs) wraps sfn-unnamed-execution (stepfunctions),
s3-complete-if-match wraps persist-s3-key-post (both in s3, in that order)."""


def _by_name() -> dict[str, Fix]:
    fixes: dict[str, Fix] = {}
    for module in SERVICES:
        for fix in module.FIXES:
            if fix.name in fixes:
                raise ValueError(f"two fixes are named {fix.name!r}")
            fixes[fix.name] = fix
    return fixes


FIXES: dict[str, Fix] = _by_name()


def apply_all() -> None:
    for fix in FIXES.values():
        fix.apply()


def revert_all() -> None:
    # newest first: fixes wrapping the same attribute (s3-complete-if-match over
    # persist-s3-key-post) unwind in the order they were stacked
    for fix in reversed(list(FIXES.values())):
        fix.revert()
