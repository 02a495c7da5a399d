"""Size limits (issue 13), checked on the source: no class over 400 lines and no module over 800 lines in
``bot/emulators`` and ``bot/store``, so each part stays a room a newcomer can hold in their head."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[2] / "bot"
CHECKED = ("emulators", "store")
MAX_CLASS_LINES = 400
MAX_MODULE_LINES = 800

MODULES = sorted(path for package in CHECKED for path in (BOT / package).rglob("*.py"))


def name_of(path: Path) -> str:
    return str(path.relative_to(BOT.parent))


@pytest.mark.parametrize("path", MODULES, ids=name_of)
def test_no_class_over_400_lines(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    sizes = {
        node.name: (node.end_lineno or node.lineno) - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }
    assert {name: size for name, size in sizes.items() if size > MAX_CLASS_LINES} == {}


@pytest.mark.parametrize("path", MODULES, ids=name_of)
def test_no_module_over_800_lines(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_MODULE_LINES


def test_the_limits_see_every_package() -> None:
    assert MODULES, "no module found: the paths are wrong"
    assert any(path.name == "server.py" for path in MODULES)
    assert any(path.name == "runs.py" and path.parent.name == "store" for path in MODULES)
