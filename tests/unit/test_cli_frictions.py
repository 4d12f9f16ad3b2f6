"""Small CLI frictions of issue 12 item 11: `chute --version`, `chute grant` needs --tenant,
`chute convert`'s rate of compressed input."""

from __future__ import annotations

import gzip
from pathlib import Path

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


def test_convert_says_its_rate_is_of_compressed_bytes_for_compressed_input(tmp_path: Path) -> None:
    # GIVEN a gzip CSV WHEN chute convert converts it
    source = tmp_path / "data.csv.gz"
    source.write_bytes(gzip.compress(b"id,name\n1,a\n2,b\n"))
    result = CliRunner().invoke(app, ["convert", str(source), str(tmp_path / "data.jsonl")])
    # THEN the rate printed says it counts the compressed input
    assert result.exit_code == 0, result.output
    assert "MB/s of gzip input" in result.output


def test_make_installs_without_setuptools_editable_notices() -> None:
    # GIVEN the Makefile WHEN it installs chute in editable mode (make run, make test)
    # THEN setuptools' editable-install notices are silenced (they are warnings, not errors)
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line and " -e " in line]
    assert installs and all("PYTHONWARNINGS=ignore" in line for line in installs)
