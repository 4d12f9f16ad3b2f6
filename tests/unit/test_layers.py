"""The layering the README's Architecture section describes, checked on the source: handler ->
domain -> adapters.

Domain code (every module of ``tasks/`` but the adapters and the handlers) never imports boto3,
botocore or an adapter, not even for types; adapters never import a step's package (its domain):
the types they share live in ``tasks.models``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TASKS = Path(__file__).resolve().parents[2] / "tasks"
STEPS = sorted(p.name for p in TASKS.iterdir() if (p / "handler.py").is_file())


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (TYPE_CHECKING blocks and functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module(path: Path) -> str:
    return ".".join(path.relative_to(TASKS.parent).with_suffix("").parts)


DOMAIN = sorted(
    p
    for p in TASKS.rglob("*.py")
    if p.parent.name != "adapters" and p.name != "handler.py" and p.name != "entry.py"
)
ADAPTERS = sorted((TASKS / "adapters").glob("*.py"))


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("path", DOMAIN, ids=module)
def test_domain_code_never_imports_aws_or_adapters(path: Path) -> None:
    leaks = {
        name
        for name in imported(path)
        if any(_under(name, p) for p in ("boto3", "botocore", "tasks.adapters"))
    }
    assert leaks == set(), f"{module(path)} imports {sorted(leaks)}"


@pytest.mark.parametrize("path", ADAPTERS, ids=module)
def test_adapters_never_import_a_step(path: Path) -> None:
    leaks = {name for name in imported(path) if any(_under(name, f"tasks.{s}") for s in STEPS)}
    assert leaks == set(), f"{module(path)} imports {sorted(leaks)}"


def test_the_rules_see_every_step_and_adapter() -> None:
    # GIVEN the lists the rules above walk  THEN they hold what they claim to (no vacuous pass)
    assert {"archive", "convert", "quarantine", "redrive", "trigger", "validate"} <= set(STEPS)
    assert {"s3", "sfn"} <= {p.stem for p in ADAPTERS}
    assert TASKS / "validate" / "domain.py" in DOMAIN
