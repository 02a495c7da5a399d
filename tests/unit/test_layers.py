"""The dependency direction of STYLE.md, checked on the source: who may import whom."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parents[2] / "bot"

# package → prefixes of bot modules it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "models": ("bot.",),
    "errors": ("bot.",),
    "config": ("bot.catalog", "bot.providers", "bot.slack", "bot.store", "bot.tracking", "bot.emulators"),
    "providers": ("bot.slack", "bot.store", "bot.tracking", "bot.delivery", "bot.catalog", "bot.emulators",
                  "bot.service"),
    "emulators": ("bot.models", "bot.errors", "bot.config", "bot.providers", "bot.catalog", "bot.slack",
                  "bot.store", "bot.tracking", "bot.service", "bot.delivery", "bot.ops"),
    "catalog": ("bot.slack", "bot.store", "bot.tracking", "bot.emulators"),
}


def bot_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "bot" or name.startswith("bot.")}


def files_of(package: str) -> list[Path]:
    single = BOT / f"{package}.py"
    return [single] if single.exists() else sorted((BOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_the_dependency_direction(package: str) -> None:
    files = files_of(package)
    assert files, f"bot/{package} not found"
    offences = [
        f"{path.relative_to(BOT.parent)} imports {name}"
        for path in files
        for name in sorted(bot_imports(path))
        if name.startswith(FORBIDDEN[package])
    ]
    assert offences == []


def test_no_provider_imports_another() -> None:
    providers = {p.stem for p in (BOT / "providers").glob("*.py") if not p.stem.startswith("_")} - {
        "base", "registry", "__init__"}
    for name in providers:
        others = {f"bot.providers.{o}" for o in providers - {name}}
        assert not bot_imports(BOT / "providers" / f"{name}.py") & others, name
