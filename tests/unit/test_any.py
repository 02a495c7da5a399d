"""``Any`` only where another system's JSON is read or written (issue 13): everywhere else the bot's types are real.

JSON that crosses a boundary (Slack's payloads and answers, a provider's answers, PagerDuty's events, a YAML
document) is typed with the aliases ``bot.models.Json`` / ``JsonValue`` (the emulators' copy in
``bot/emulators/_core.py``: they import nothing of the bot), the two places that spell ``Any``. A library whose
types force ``Any`` on a module goes in ``FORCED`` with its reason; nothing does today.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"

#: the JSON aliases: (module, the alias whose value is ``Any``)
ALIASES = {("bot/models.py", "JsonValue"), ("bot/emulators/_core.py", "JsonValue")}
#: module → why a library leaves it no type but ``Any`` (each entry lets that module use it anywhere)
FORCED: dict[str, str] = {}


def _is_any(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "Any") or (isinstance(node, ast.Attribute) and node.attr == "Any")


def _names_any(node: ast.AST) -> bool:
    return any(_is_any(n) for n in ast.walk(node))


def _quoted_any(node: ast.AST) -> bool:
    """Whether a type written in quotes (``"dict[str, Any]"``) inside ``node`` spells ``Any``."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
            try:
                if _names_any(ast.parse(inner.value, mode="eval")):
                    return True
            except SyntaxError:
                continue
    return False


def anys_in(source: str, *, alias: str | None = None) -> list[int]:
    """The lines of ``source`` that use ``Any``, but the definition of ``alias`` and the import. A type in quotes
    counts where a type is written (annotations, type aliases, ``cast``); prose does not."""
    tree = ast.parse(source)
    allowed: set[int] = set()  # ids of the nodes of the alias's definition and of `from typing import Any`
    types: list[ast.expr] = []  # where a string is a type
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            allowed.update(id(n) for n in ast.walk(node))
        elif isinstance(node, ast.AnnAssign):
            types.append(node.annotation)
            if isinstance(node.target, ast.Name) and node.target.id == alias and node.value is not None:
                allowed.update(id(n) for n in ast.walk(node.value))
            elif node.value is not None and "TypeAlias" in ast.unparse(node.annotation):
                types.append(node.value)
        elif isinstance(node, ast.arg) and node.annotation is not None:
            types.append(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            types.append(node.returns)
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("cast") and node.args:
            types.append(node.args[0])
    found = {n.lineno for n in ast.walk(tree) if isinstance(n, ast.expr) and _is_any(n) and id(n) not in allowed}
    found |= {t.lineno for t in types if _quoted_any(t)}
    for node in ast.walk(tree):  # `Any as Whatever` would hide it from the rest of this check
        if isinstance(node, ast.ImportFrom) and any(a.name == "Any" and a.asname for a in node.names):
            found.add(node.lineno)
    return sorted(found)


def _modules() -> list[Path]:
    return sorted(BOT.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_any_only_in_the_json_aliases(path: Path) -> None:
    name = str(path.relative_to(ROOT))
    if name in FORCED:
        return
    alias = next((a for module, a in ALIASES if module == name), None)
    lines = anys_in(path.read_text(encoding="utf-8"), alias=alias)
    assert not lines, (
        f"{name}:{lines}: `Any` outside the JSON aliases. Another system's JSON is bot.models.Json / JsonValue; "
        "anything else has a real type (a Protocol, a TypeVar, `object`, the library's own type). A library "
        "that leaves no choice goes in FORCED (tests/unit/test_any.py) with its reason."
    )


def test_the_aliases_are_where_they_are_said_to_be() -> None:
    for module, alias in ALIASES:
        tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
        defined = [
            n for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
            and n.target.id == alias and n.value is not None and _names_any(n.value)
        ]
        assert defined, f"{module} no longer defines {alias} as Any: update ALIASES in tests/unit/test_any.py"


@pytest.mark.parametrize(
    "source",
    [
        "from typing import Any\ndef f(x: Any) -> None: ...",
        "from typing import Any\ndef f() -> dict[str, Any]: ...",
        "from typing import Any\nx: list[Any] = []",
        "import typing\ndef f(x: typing.Any) -> None: ...",
        "def f(x: 'dict[str, Any]') -> None: ...",
        "from typing import Any, TypeAlias\nBlob: TypeAlias = Any",
        "from typing import Any, cast\ny = cast(Any, 1)",
        "from typing import Any as Whatever",
        "from typing import Any\nclass C:\n    def m(self, **kw: Any) -> None: ...",
    ],
)
def test_each_spelling_of_any_is_caught(source: str) -> None:
    assert anys_in(source), source


def test_prose_and_the_alias_itself_pass() -> None:
    source = (
        '"""Any other error is raised."""\nfrom typing import Any, TypeAlias\n'
        "JsonValue: TypeAlias = Any\n"
        "def f(x: JsonValue) -> str:\n    return 'Any run'\n"
    )
    assert anys_in(source, alias="JsonValue") == []
