"""Small CLI frictions of issue 12 item 11: `chute --version`, `chute grant` needs --tenant."""

from __future__ import annotations

from typer.testing import CliRunner

from chute import __version__
from chute.cli import app


def test_version_prints_the_installed_version_and_exits() -> None:
    # WHEN chute --version runs THEN it prints the version and exits 0, running no command
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"chute {__version__}"


def test_grant_requires_a_tenant() -> None:
    # WHEN chute grant runs without --tenant THEN it is a usage error naming the option
    result = CliRunner().invoke(app, ["grant", "data.csv", "--endpoint-url", "http://x:1"])
    assert result.exit_code == 2
    assert "--tenant" in result.output
