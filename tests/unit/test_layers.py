"""The dependency direction of STYLE.md, checked on the source: who may import whom.

Every package and top-level module of ``bot/`` sits in one layer; a layer imports only from the layers below it
(to its right in ``docs/ARCHITECTURE.md``), never from its own (two packages side by side know nothing of each
other) nor from above. Every import counts, wherever it is written: at the top of a module or inside a function.

    __main__ → cli → demo        entry points: they parse arguments, run the bot, the demo or an emulator
    runtime                      the composition root: builds every part from the settings, installs the jobs
    tracking, checks             the periodic jobs: poller, watch, stuck, schedules, digest; the online checks
    slack                        Bolt listeners, Block Kit rendering (the Reporter), the HTTP endpoint
    service                      what a command or a job asks for: runs, retries, alerts, workflows; events.py
    delivery, catalog            the outbox sender; pipelines.yml as validated models
    store, providers, config     SQL; the provider clients; the settings
    models, errors, ops, urls    values, the error tree, logging / metrics / redaction / text, URL checks

``emulators`` stand beside them all and import nothing of ``bot`` but themselves, so a client's misreading of an
API cannot be copied into the emulator that tests it; only the entry points start them. ``bench`` (outside
``bot/``) drives the whole bot like an operator, so it may import anything, and nothing in ``bot/`` imports it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"

#: top to bottom; a package imports only from the layers after its own
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__",),
    ("cli",),  # `demo` is one of its subcommands
    ("demo",),
    ("runtime",),
    ("tracking", "checks"),  # checks: names resolved to Slack ids at start, and `check --online`
    ("slack",),
    ("service",),
    ("delivery", "catalog"),
    ("store", "providers", "config"),
    ("models", "errors", "ops", "urls"),
)
#: the domain: it says what happened to a small interface (``bot.service.events.Reporter``), never renders it;
#: ``tracking`` sits above ``slack`` (the runtime wires them) but never imports it either
DOMAIN = ("service", "tracking", "store", "catalog", "delivery", "providers")
#: beside every layer: may import only themselves; ``bench`` and the entry points may import them
BESIDE = ("emulators",)
MAY_USE_EMULATORS = ("cli", "demo")

#: imports written inside a function, each with its reason (anything else is a cycle dodged, or should be on top)
LAZY_IMPORTS = {
    # the command line loads what only one subcommand needs when that one runs (`check` starts no bot)
    ("bot/cli.py", "bot.runtime"),
    ("bot/cli.py", "bot.emulators.standalone"),
    ("bot/cli.py", "bot.demo.run"),
    # Socket Mode's handler (and slack_sdk's Socket Mode modules) only for a bot that asks for it, at start-up
    ("bot/runtime.py", "bot.slack.socket_mode"),
}


def layer_of(package: str) -> int:
    for depth, layer in enumerate(LAYERS):
        if package in layer:
            return depth
    raise AssertionError(f"bot/{package} is in no layer: place it in LAYERS (tests/unit/test_layers.py)")


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """Every absolute import of ``path``, and whether it is written at the top of the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    on_top = {id(node) for node in tree.body}
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in on_top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import; write it absolute so this check sees it"
            if node.module == "bot":  # `from bot import slack` imports bot.slack, as imported_modules() counts it
                found += [(f"bot.{alias.name}", id(node) in on_top) for alias in node.names]
            elif node.module:
                found.append((node.module, id(node) in on_top))
    return found


#: a module named by a string: "bot.providers.rivery", "bot.emulators.rivery:RiveryEmulator"
MODULE_NAME = re.compile(r"(bot(?:\.\w+)+)(?::\w+)?")


def dynamic_imports(path: Path) -> set[str]:
    """Modules imported by name at run time: the string given to ``importlib.import_module`` or ``__import__``;
    where the name is not written in the call (a table of modules, as ``bot.providers.registry`` keeps), every
    string of the module that names a ``bot`` module counts."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))
        )
    ]
    if not calls:
        return set()
    literal = all(c.args and isinstance(c.args[0], ast.Constant) for c in calls)
    where: list[ast.AST] = [c.args[0] for c in calls] if literal else [tree]
    return {
        match[1]
        for root in where
        for node in ast.walk(root)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if (match := MODULE_NAME.fullmatch(node.value))
    }


def bot_imports(path: Path) -> set[str]:
    static = {name for name, _ in imports_of(path) if name == "bot" or name.startswith("bot.")}
    return static | dynamic_imports(path)


def package_of(module: str) -> str:
    """``bot.slack.blocks.card`` → ``slack``; ``bot.urls`` → ``urls``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "bot"


def packages(bot: Path = BOT) -> list[str]:
    found = {p.stem for p in bot.glob("*.py") if p.stem != "__init__"}
    found |= {p.name for p in bot.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    return sorted(found)


def files_of(package: str, bot: Path = BOT) -> list[Path]:
    single = bot / f"{package}.py"
    return [single] if single.exists() else sorted((bot / package).rglob("*.py"))


def offences(package: str, bot: Path = BOT) -> list[str]:
    """What ``package`` of ``bot`` imports against the contract."""
    found = []
    for path in files_of(package, bot):
        for name in sorted(bot_imports(path)):
            used = package_of(name)
            if used in (package, "bot"):
                continue
            if package in BESIDE or used in BESIDE:
                allowed = used == package or (used in BESIDE and package in MAY_USE_EMULATORS)
            else:
                allowed = layer_of(used) > layer_of(package)
            if not allowed:
                found.append(f"{path.relative_to(bot.parent)} imports {name}")
    return found


def test_every_package_has_its_place() -> None:
    placed = {p for layer in LAYERS for p in layer} | set(BESIDE)
    assert set(packages()) <= placed, f"not in LAYERS: {sorted(set(packages()) - placed)}"
    assert placed <= set(packages()), f"in LAYERS but not in bot/: {sorted(placed - set(packages()))}"


@pytest.mark.parametrize("package", packages())
def test_package_respects_the_dependency_direction(package: str) -> None:
    assert files_of(package), f"bot/{package} not found"
    assert offences(package) == []


@pytest.mark.parametrize("package", DOMAIN)
def test_the_domain_never_renders(package: str) -> None:
    slack = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files_of(package)
        for name in sorted(bot_imports(path))
        if package_of(name) == "slack"
    ]
    assert slack == []


def test_the_check_catches_a_violation(tmp_path: Path) -> None:
    """A domain package importing Slack, or an import hidden in a function, is reported."""
    fake = tmp_path / "bot"
    for package in ("service", "slack", "emulators"):
        (fake / package).mkdir(parents=True)
        (fake / package / "__init__.py").write_text("")
    (fake / "service" / "late.py").write_text("def f() -> None:\n    from bot.slack.text import escape\n")
    (fake / "emulators" / "x.py").write_text("import bot.models\n")
    (fake / "slack" / "ok.py").write_text("from bot.service.late import f\n")
    assert offences("service", fake) == ["bot/service/late.py imports bot.slack.text"]
    assert offences("emulators", fake) == ["bot/emulators/x.py imports bot.models"]
    assert offences("slack", fake) == []


def test_the_check_sees_from_bot_import_and_imports_by_name(tmp_path: Path) -> None:
    """``from bot import slack`` imports ``bot.slack``; so does ``importlib.import_module("bot.slack.text")``,
    or a module name in a table that ``import_module`` is later given."""
    fake = tmp_path / "bot"
    for package in ("service", "slack", "store"):
        (fake / package).mkdir(parents=True)
        (fake / package / "__init__.py").write_text("")
    (fake / "service" / "a.py").write_text("from bot import slack\n")
    (fake / "service" / "b.py").write_text("import importlib\nimportlib.import_module('bot.slack.text')\n")
    (fake / "store" / "c.py").write_text(
        "import importlib\nTABLE = {'x': 'bot.service.a:thing'}\n"
        "def load(k: str) -> object:\n    return importlib.import_module(TABLE[k])\n"
    )
    (fake / "slack" / "ok.py").write_text("from bot import service\n__import__('bot.store.c')\n")
    assert offences("service", fake) == ["bot/service/a.py imports bot.slack", "bot/service/b.py imports bot.slack.text"]
    assert offences("store", fake) == ["bot/store/c.py imports bot.service.a"]
    assert offences("slack", fake) == []


def test_no_import_is_hidden_in_a_function() -> None:
    """An import placed inside a function to dodge a cycle is a cycle: every bot import is at the top of its
    module, but for the few in LAZY_IMPORTS, each with its reason."""
    hidden = {
        (str(path.relative_to(ROOT)), name)
        for path in sorted(BOT.rglob("*.py"))
        for name, on_top in imports_of(path)
        if not on_top and (name == "bot" or name.startswith("bot."))
    }
    assert hidden - LAZY_IMPORTS == set(), "imports inside functions"
    assert LAZY_IMPORTS - hidden == set(), "LAZY_IMPORTS lists imports that are gone: remove them"


def test_block_builders_take_views_not_store_records() -> None:
    """Issue 13: ``bot.slack.blocks`` renders values of the domain (``bot.service.views``, ``bot.service.events``),
    never the store's records; the reporter and the command handlers make the views."""
    offences = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((BOT / "slack" / "blocks").rglob("*.py"))
        for name in sorted(bot_imports(path))
        if name == "bot.store" or name.startswith("bot.store.")
    ]
    assert offences == []


def test_nothing_in_bot_imports_bench() -> None:
    users = [
        str(path.relative_to(ROOT))
        for path in sorted(BOT.rglob("*.py"))
        if any(name == "bench" or name.startswith("bench.") for name, _ in imports_of(path))
    ]
    assert users == []


def test_bench_never_imports_the_tests() -> None:
    """The benchmarks run without the test suite; what both need (scratch PostgreSQL databases) lives in bench."""
    users = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "bench").rglob("*.py"))
        for name, _ in imports_of(path)
        if name == "tests" or name.startswith("tests.")
    ]
    assert users == []


def provider_modules(providers: Path = BOT / "providers") -> dict[str, list[Path]]:
    """Each provider (a module, or a package such as ``datakitchen/``) and its files."""
    found = {p.stem: [p] for p in providers.glob("*.py") if not p.stem.startswith("_")}
    found |= {p.name: sorted(p.rglob("*.py")) for p in providers.iterdir() if (p / "__init__.py").exists()}
    return {name: files for name, files in found.items() if name not in ("base", "registry", "__init__")}


def test_no_provider_imports_another() -> None:
    providers = provider_modules()
    assert {"rivery", "tailer", "invision", "datakitchen"} <= providers.keys(), "a provider is not seen"
    offences = [
        f"{path.relative_to(BOT.parent)} imports {imported}"
        for name, files in providers.items()
        for path in files
        for imported in sorted(bot_imports(path))
        if any(imported == f"bot.providers.{o}" or imported.startswith(f"bot.providers.{o}.") for o in providers)
        and not (imported == f"bot.providers.{name}" or imported.startswith(f"bot.providers.{name}."))
    ]
    assert offences == []



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
