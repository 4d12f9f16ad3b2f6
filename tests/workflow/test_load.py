"""Load, small (issue 10; the full run is bench/load.py): many files at once, every key with
exactly one terminal outcome, none lost, none published twice."""

from __future__ import annotations

import os

from bench.load import run_load
from chute.local.embedded import WARM_STEPS, EmbeddedAws
from tests.support.pipeline import LARGE_THRESHOLD


def test_sixty_small_and_one_large_file_at_once_each_end_exactly_once(
    embedded: EmbeddedAws,
) -> None:
    # GIVEN 60 small valid CSVs and one above the Batch threshold, uploaded at once
    # WHEN the pipeline has finished with all of them
    result = run_load(
        embedded.client,
        embedded.resources,
        small=60,
        large=1,
        large_bytes=64 * LARGE_THRESHOLD,
        uploaders=8,
        timeout=300,
    )
    # THEN every key was archived with its output by exactly one execution, on its route
    assert result.problems == []
    assert result.lost == []
    assert result.duplicated == []
    assert result.outcomes == {"archived": 61}
    assert result.executions == 61
    assert result.routes == {"lambda": 60, "batch": 1}


def test_the_runtime_starts_with_a_warm_worker_for_each_step_of_a_file(
    embedded: EmbeddedAws,
) -> None:
    # GIVEN the embedded runtime has started (and may have served other tests since)
    # THEN it started a worker of each function a file passes through, and each still has one
    # (idle ones are stopped down to one), never more than the cores
    assert embedded.warmed == list(WARM_STEPS)
    for step in WARM_STEPS:
        assert 1 <= embedded.worker_processes(step) <= max(2, os.cpu_count() or 2)
