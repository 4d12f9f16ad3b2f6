"""One embedded runtime for the workflow tests (starting it takes about a second).

Retry waits are scaled down (time_scale) and the queue's visibility timeout is short, so nothing
sleeps for real retry intervals; waits are bounded polls.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chute.local.embedded import EmbeddedAws, LocalSettings, free_port
from chute.ops.workflow_tests import DEFAULT_MOCK_CONFIG
from tasks.batch_sizing import BatchSizing
from tests.support.moto_patches import make_probe
from tests.support.pipeline import (
    FANOUT_PART_BYTES,
    FANOUT_THRESHOLD,
    LARGE_THRESHOLD,
    Pipeline,
    _subscribe_completions,
)


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedAws]:
    settings = LocalSettings(
        port=free_port(),
        large_file_threshold_bytes=LARGE_THRESHOLD,
        time_scale=0.001,
        state_dir=Path(tmp_path_factory.mktemp("chute")),
        visibility_timeout_seconds=1,
        max_receive_count=2,
        mock_config=DEFAULT_MOCK_CONFIG,
        # every Batch job gets one vCPU: the runner pins it to one core (as Fargate's quota)
        batch_sizing=BatchSizing(min_vcpu=1, max_vcpu=1),
        # uncompressed files of 16 MiB and more fan out in parts of about 4 MiB
        fanout_threshold_bytes=FANOUT_THRESHOLD,
        fanout_part_bytes=FANOUT_PART_BYTES,
    )
    with EmbeddedAws(settings) as aws:
        _subscribe_completions(aws)
        yield aws


@pytest.fixture
def pipeline(embedded: EmbeddedAws) -> Pipeline:
    return Pipeline(embedded)


@pytest.fixture(scope="session")
def probe(embedded: EmbeddedAws) -> dict[str, Any]:
    """A bucket notifying a queue of its own, outside the pipeline's resources (the tests of
    chute.local.moto_patches): created once, shared by their files."""
    return make_probe(embedded)
