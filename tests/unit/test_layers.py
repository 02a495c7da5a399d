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



def module_name(path: Path) -> str:
    parts = path.relative_to(BOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The known modules ``path`` imports, anywhere in it (functions and ``TYPE_CHECKING`` included).
    ``from package import module`` imports the module, as import-linter counts it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{a.name}" for a in node.names} & known
            found.update(submodules or {node.module})
    return found & known


def test_emulators_import_nothing_of_bot_but_emulators() -> None:
    """Issue 13: a client's misreading of an API must not be copied into the server that tests it."""
    offences = [
        f"{path.relative_to(BOT.parent)} imports {name}"
        for path in files_of("emulators")
        for name in sorted(bot_imports(path))
        if name != "bot.emulators" and not name.startswith("bot.emulators.")
    ]
    assert offences == []


def test_no_import_cycle_inside_the_emulators() -> None:
    paths = {module_name(path): path for path in files_of("emulators")}
    graph = {name: imported_modules(path, set(paths)) - {name} for name, path in paths.items()}

    def cycle_from(trail: tuple[str, ...]) -> tuple[str, ...] | None:
        for following in sorted(graph[trail[-1]]):
            if following in trail:
                return (*trail[trail.index(following):], following)
            if (found := cycle_from((*trail, following))) is not None:
                return found
        return None

    assert [cycle for name in sorted(graph) if (cycle := cycle_from((name,)))] == []
