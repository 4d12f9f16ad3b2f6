"""The request floor benchmark, small (the full run is bench/request_floor.py): each part makes
its requests on the embedded runtime and is charged CPU for them."""

from __future__ import annotations

from bench.request_floor import interpreter_part, invoke_part, s3_part, start_part
from chute.local.embedded import EmbeddedAws


def test_each_part_of_the_floor_runs_and_is_charged(embedded: EmbeddedAws) -> None:
    # GIVEN the runtime (mocked cases loaded)  WHEN each part runs for a few files
    parts = [
        s3_part(embedded, 3, round_=99),
        start_part(embedded, 3),
        interpreter_part(embedded, 2),
        invoke_part(embedded, 3),
    ]
    # THEN every request succeeded (a refused one raises) and each part cost the endpoint CPU
    assert all(p.endpoint_ms > 0 for p in parts)
    # AND the S3 part's client side is the workers' botocore
    assert parts[0].requests_per_file == 15 and parts[0].client_ms > 0
    assert (
        not embedded.client("s3")
        .list_objects_v2(Bucket=embedded.resources.archive_bucket, Prefix="floor/99/")
        .get("Contents")
    )  # the originals were "archived" out of the stand-in staging bucket
