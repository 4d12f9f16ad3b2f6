"""The import rules of the packages (each package's __init__ docstring states its rule): code that
runs against AWS never reaches for the embedded runtime, and the steps never reach for chute."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> the packages it must never import (a prefix forbids its sub-packages too)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "tasks": ("chute", "infra", "batch", "moto", "aws_cdk"),
    "batch": ("chute", "infra", "moto", "aws_cdk"),
    "infra": ("chute", "moto"),
    "chute.ops": ("chute.local", "chute.cli", "chute.web", "moto", "aws_cdk"),
    "chute.web": ("chute.local", "chute.cli", "moto", "aws_cdk"),
    "chute.local": ("chute.cli", "aws_cdk"),
    # the changes to moto sit under the runtime that uses them: arrows go one way
    "chute.local.moto_patches": ("chute.local.persistence", "chute.local.embedded"),
    "chute.cli": ("moto", "aws_cdk"),
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    folder = ROOT.joinpath(*package.split("."))
    out = []
    for path in sorted(folder.rglob("*.py")):
        for module in sorted(imported_modules(path)):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                out.append(f"{path.relative_to(ROOT)} imports {module}")
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_keeps_its_import_rule(package: str) -> None:
    # GIVEN every Python file of the package
    # WHEN its imports (including function-level ones) are read
    found = violations(package, FORBIDDEN[package])
    # THEN none names a package the rule forbids
    assert found == []


def test_the_rule_check_sees_function_level_imports(tmp_path: Path) -> None:
    # GIVEN a file that imports the embedded runtime inside a function
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from chute.local.embedded import Resources\n")
    # WHEN its imports are read
    found = imported_modules(path)
    # THEN the check sees it
    assert "chute.local.embedded" in found


@pytest.mark.parametrize(
    "package",
    ["chute", "chute.ops", "chute.local", "chute.local.moto_patches", "chute.cli", "chute.web"],
)
def test_each_package_says_what_lives_there(package: str) -> None:
    # GIVEN a package of chute WHEN its __init__ is read THEN its docstring says what it holds
    init = ROOT.joinpath(*package.split("."), "__init__.py")
    assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
