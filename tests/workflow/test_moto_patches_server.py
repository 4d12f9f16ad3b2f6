"""moto's server (chute/local/moto_patches/server.py): the request filter of injected faults,
the cached service lookup.

How these tests go: tests/support/moto_patches.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chute.local.embedded import EmbeddedAws
from tests.support.moto_patches import without


# --- request-filter (hook) --------------------------------------------------------------------
def test_injected_s3_faults_are_answered_through_the_request_filter(embedded: EmbeddedAws) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=embedded.endpoint_url,
        region_name=embedded.settings.region,
        aws_access_key_id="probe",
        aws_secret_access_key="probe",
        config=Config(retries={"total_max_attempts": 1}),
    )
    bucket, key = embedded.resources.output_bucket, "request-filter-probe/x"
    s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    embedded.faults.add(f"s3:GetObject:503:1:{key}")
    try:
        # without the hook the rule is never consulted: the request is served
        with without("request-filter"):
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"x"
        # with it, the armed rule answers S3's own error
        with pytest.raises(ClientError) as error:
            s3.get_object(Bucket=bucket, Key=key)
        assert error.value.response["Error"]["Code"] == "SlowDown"
        s3.delete_object(Bucket=bucket, Key=key)
    finally:
        embedded.faults.clear()


@contextmanager
def _count_module_scans() -> Iterator[list[int]]:
    from moto import backends

    real = backends.list_of_moto_modules
    calls = [0]

    def counting() -> Any:
        calls[0] += 1
        return real()

    backends.list_of_moto_modules = counting  # type: ignore[assignment]
    try:
        yield calls
    finally:
        backends.list_of_moto_modules = real  # type: ignore[assignment]


def test_requests_find_their_service_without_scanning_moto(probe: dict[str, Any]) -> None:
    probe["s3"].head_bucket(Bucket="probe-bucket")  # this host is known from here on
    with _count_module_scans() as scans:
        for _ in range(3):
            probe["s3"].head_bucket(Bucket="probe-bucket")
    assert scans[0] == 0


@pytest.mark.canary
def test_canary_every_request_still_scans_moto(probe: dict[str, Any]) -> None:
    with without("server-dispatch-cache"), _count_module_scans() as scans:
        probe["s3"].head_bucket(Bucket="probe-bucket")
    assert scans[0] > 0
