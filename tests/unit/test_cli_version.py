"""`chute --version` (issue 12 item 11)."""

from __future__ import annotations

from typer.testing import CliRunner

from chute import __version__
from chute.cli import app


def test_version_prints_the_installed_version_and_exits() -> None:
    # WHEN chute --version runs THEN it prints the version and exits 0, running no command
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"chute {__version__}"
