"""bench/load.py against `chute up` in its own process (``--chute-up``), small: the figures the
backlog target is read from come from the runtime as users run it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import load


def test_a_load_on_chute_up_started_by_the_harness_ends_every_file_once(capsys: Any) -> None:
    # GIVEN the harness starting `chute up --fresh` itself
    # WHEN 20 small files and one for Batch are uploaded at once
    code = load.main(["--chute-up", "--small", "20", "--large", "1", "--large-mib", "2", "--json"])

    # THEN each was archived by one execution on its route, and the tree measured is chute up's
    figures = json.loads(capsys.readouterr().out)
    assert code == 0
    assert figures["outcomes"] == {"archived": 21}
    assert figures["routes"] == {"lambda": 20, "batch": 1}
    assert figures["lost"] == [] and figures["duplicated"] == []
    assert figures["root_cpu_ms_per_file"] > 0 and figures["peak_rss_mib"] > 100


def test_chute_up_is_not_combined_with_another_runtime(capsys: Any) -> None:
    # GIVEN --chute-up with a running endpoint named too  WHEN parsed  THEN a usage error
    with pytest.raises(SystemExit) as exited:
        load.main(["--chute-up", "--endpoint-url", "http://127.0.0.1:1"])
    assert exited.value.code == 2
    assert "--chute-up starts its own runtime" in capsys.readouterr().err
