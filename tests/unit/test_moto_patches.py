"""The registry of chute's changes to moto (chute/local/moto_patches): fixes of one attribute
stacking in declared order and unwinding, and a canary for every fix upstream could make
unneeded."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from chute.local.moto_patches import FIXES, Kind
from chute.local.moto_patches.seam import Fixes

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_TESTS = sorted((ROOT / "tests" / "workflow").glob("test_moto_patches_*.py"))


def _is_canary(decorator: ast.expr) -> bool:
    return isinstance(decorator, ast.Attribute) and decorator.attr == "canary"


def canaries() -> dict[str, set[str]]:
    """Each canary test (``@pytest.mark.canary``) of the moto_patches tests -> the fix names it
    mentions."""
    found: dict[str, set[str]] = {}
    for path in WORKFLOW_TESTS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(map(_is_canary, node.decorator_list)):
                found[f"{path.name}::{node.name}"] = {
                    c.value
                    for c in ast.walk(node)
                    if isinstance(c, ast.Constant) and c.value in FIXES
                }
    return found


def test_every_fix_upstream_could_make_unneeded_has_a_canary() -> None:
    # GIVEN the canary tests and the fixes whose kind upstream could fix
    watched = set().union(*canaries().values())
    expected = {name for name, fix in FIXES.items() if fix.kind.has_canary}
    # WHEN they are compared THEN each such fix is watched by a canary
    assert sorted(expected - watched) == []
    # AND the fixes without one are exactly the hooks (chute's own code inside moto)
    unwatched = set(FIXES) - watched
    assert {FIXES[name].kind for name in unwatched} == {Kind.HOOK, Kind.PERSISTENCE}


def test_every_canary_names_the_fix_it_watches() -> None:
    # GIVEN every canary test WHEN the fix names it mentions are read THEN none names none
    assert [test for test, names in canaries().items() if not names] == []


def test_fixes_of_one_attribute_stack_in_declared_order_and_unwind() -> None:
    # GIVEN three fixes of one attribute, two of them sharing a factory
    owner = SimpleNamespace(value="moto")
    fixes = Fixes()

    @fixes.declare("first", Kind.BEHAVIOUR, owner, "value", why="declared first")
    def wrap(original: Any) -> Any:
        return f"({original})"

    fixes.declare("second", Kind.SPEED, owner, "value", why="declared again")(wrap)
    fixes.declare("third", Kind.HOOK, owner, "value", why="declared last")(lambda o: f"[{o}]")
    assert [fix.name for fix in fixes] == ["first", "second", "third"]
    # WHEN they are applied in that order
    for fix in fixes:
        fix.apply()
    # THEN the later ones wrap the earlier ones, and reverting newest first restores moto's
    assert owner.value == "[((moto))]"
    for fix in reversed(fixes):
        fix.revert()
    assert owner.value == "moto"


def test_a_fix_adding_what_moto_lacks_is_removed_on_revert() -> None:
    # GIVEN a fix of an attribute the owner doesn't have (an API operation moto lacks)
    owner = SimpleNamespace()
    fixes = Fixes()
    fixes.declare("added", Kind.REDRIVE, owner, "operation", why="missing")(lambda _: "ours")
    (fix,) = fixes
    # WHEN applied and reverted THEN it exists only in between
    fix.apply()
    assert owner.operation == "ours"
    fix.revert()
    assert not hasattr(owner, "operation")
