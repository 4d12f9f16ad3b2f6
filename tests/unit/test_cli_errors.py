"""Unexpected errors are one line with what to do; --debug prints the traceback (issue 12
item 7)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from chute.cli import main, options
from chute.ops import operate


def _no_pipeline(*args: Any, **kwargs: Any) -> Any:
    raise ClientError(
        {"Error": {"Code": "StateMachineDoesNotExist", "Message": "State Machine Does Not Exist"}},
        "ListExecutions",
    )


def test_an_endpoint_without_a_pipeline_is_one_line_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an endpoint (that answers) that has no chute pipeline
    monkeypatch.setattr(options, "connect", lambda **kwargs: object())
    monkeypatch.setattr(operate, "executions", _no_pipeline)
    # WHEN chute status runs against it
    with pytest.raises(SystemExit) as exit_:
        main(["status", "--endpoint-url", "http://127.0.0.1:9"])
    # THEN it exits 1 with one error line, the hint, and how to see more; no traceback
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "StateMachineDoesNotExist" in err
    assert "chute up" in err
    assert "--debug" in err
    assert "Traceback (most recent call last)" not in err
    assert len(err.strip().splitlines()) == 3


def test_debug_anywhere_shows_the_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(options, "connect", lambda **kwargs: object())
    monkeypatch.setattr(operate, "executions", _no_pipeline)
    with pytest.raises(ClientError):
        main(["status", "--endpoint-url", "http://127.0.0.1:9", "--debug"])
