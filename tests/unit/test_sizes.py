"""Size limits (issue 13), checked on the source: no class over 400 lines and no module over 800 lines anywhere in
``bot/`` (its migrations aside: each is a record of a schema change, kept as written), so each part stays a room a
newcomer can hold in their head."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[2] / "bot"
MIGRATIONS = BOT / "store" / "migrations"
MAX_CLASS_LINES = 400
MAX_MODULE_LINES = 800

MODULES = sorted(path for path in BOT.rglob("*.py") if not path.is_relative_to(MIGRATIONS))


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
    """Every package of bot/ and its top-level modules are checked, down to sub-packages; the migrations are not."""
    packages = {p.name for p in BOT.iterdir() if (p / "__init__.py").exists()}
    assert {"emulators", "providers", "slack", "store", "tracking"} <= packages, "the paths are wrong"
    seen = {path.relative_to(BOT).parts[0] for path in MODULES if path.parent != BOT}
    assert seen == packages
    assert {"cli.py", "models.py"} <= {path.name for path in MODULES if path.parent == BOT}
    assert BOT / "providers" / "datakitchen" / "client.py" in MODULES  # sub-packages too
    assert BOT / "emulators" / "datakitchen" / "server.py" in MODULES
    assert MIGRATIONS.is_dir() and not any(path.is_relative_to(MIGRATIONS) for path in MODULES)
