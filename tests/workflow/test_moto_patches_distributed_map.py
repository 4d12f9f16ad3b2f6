"""Distributed Map (chute/local/moto_patches/distributed_map.py): a failed item fails the Map.

How these tests go: tests/support/moto_patches.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chute.local.embedded import EmbeddedAws
from tests.support.moto_patches import finish, machine, without

MANIFEST = "probe/distributed-map/items.json"


def _map_machine(embedded: EmbeddedAws, name: str) -> str:
    """A Distributed Map over a JSON array in S3: each item passes, or fails if it says so."""
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "Item",
        "States": {
            "Item": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Broken"}],
                "Default": "Fine",
            },
            "Broken": {"Type": "Fail", "Error": "PartFailed", "Cause": "this item fails"},
            "Fine": {"Type": "Pass", "End": True},
        },
    }
    definition = {
        "StartAt": "Parts",
        "States": {
            "Parts": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket.$": "$.bucket", "Key": MANIFEST},
                },
                "MaxConcurrency": 2,
                "ItemProcessor": processor,
                "End": True,
            }
        },
    }
    return machine(embedded, name, definition)


def _run(embedded: EmbeddedAws, name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    bucket = embedded.resources.staging_bucket
    embedded.client("s3").put_object(Bucket=bucket, Key=MANIFEST, Body=json.dumps(items))
    return finish(embedded, _map_machine(embedded, name), input=json.dumps({"bucket": bucket}))


def test_a_failed_item_fails_the_map(embedded: EmbeddedAws) -> None:
    items = [{"fail": False}, {"fail": True}, {"fail": False}]
    desc = _run(embedded, "probe-map-fails", items)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "States.ExceedToleratedFailureThreshold"


def test_a_map_whose_items_all_pass_succeeds(embedded: EmbeddedAws) -> None:
    desc = _run(embedded, "probe-map-passes", [{"fail": False, "n": n} for n in range(5)])
    assert desc["status"] == "SUCCEEDED"
    assert [item["n"] for item in json.loads(desc["output"])] == list(range(5))


@pytest.mark.canary
def test_canary_a_failed_item_still_leaves_the_map_succeeding(embedded: EmbeddedAws) -> None:
    with without("sfn-distributed-map-item-failure"):
        desc = _run(embedded, "probe-map-canary", [{"fail": True}, {"fail": False}])
    assert desc["status"] == "SUCCEEDED"
    assert json.loads(desc["output"])[0] is None
