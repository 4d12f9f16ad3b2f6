"""The embedded engine as a target of the workflow's test cases (chute.ops.workflow_tests): a
private runtime with the suite's MockConfigFile loaded, no Docker."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chute.local.embedded import EmbeddedAws, EmbeddedError, LocalSettings, free_port
from chute.ops.workflow_tests import Suite, TargetError, ensure_state_machine, put_objects


@contextmanager
def embedded_target(suite: Suite) -> Iterator[tuple[Any, str]]:
    """A private embedded runtime with the suite's MockConfigFile loaded and its workflow
    deployed under the name the MockConfigFile uses, the objects the cases read put in its S3:
    (stepfunctions client, state machine ARN).
    Retry waits take no time (time_scale 0); nothing is kept."""

    with tempfile.TemporaryDirectory(prefix="chute-test-workflow-") as state_dir:
        settings = LocalSettings(
            port=free_port(),
            time_scale=0.0,
            persist=False,
            state_dir=Path(state_dir),
            mock_config=suite.mock_config_path,
        )
        runtime = EmbeddedAws(settings)
        try:
            runtime.start()
        except EmbeddedError as exc:
            runtime.stop()
            raise TargetError(str(exc)) from exc
        try:
            put_objects(runtime.client("s3"), suite.expectations)
            sfn = runtime.client("stepfunctions")
            arn = ensure_state_machine(
                sfn, suite.machine, suite.definition, runtime.resources.role_arn
            )
            yield sfn, arn
        finally:
            runtime.stop()
