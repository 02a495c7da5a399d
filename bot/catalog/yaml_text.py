"""The catalog file as YAML: composed once, so each problem can name the line it is about.

A key given twice is found on the composed nodes (construction would keep the last one silently); the lines
of every dotted path (``pipelines.orders-eu.owners``) are read from the nodes' marks, and a problem line
``path: problem`` becomes ``file:line: path: problem``. Values are quoted by ``shown``: cut, escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import yaml

__all__ = ["Loader", "duplicate_keys", "keys_as_written", "line_number", "marks", "placed", "shown"]

_INDEX = re.compile(r"\.(\d+)(?=[.\[]|$)")

#: the longest value a problem line quotes: an alias-expanded list or a pasted blob would flood the terminal
SHOWN = 80


def shown(value: object) -> str:
    """A value as a problem line quotes it: a string (cut to ``SHOWN`` characters, control characters escaped),
    a number or a bool; anything else only by its kind (``repr`` of an alias-expanded list is gigabytes)."""
    if isinstance(value, bool | int | float) or value is None:
        text = repr(value)
        return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"
    if isinstance(value, str):
        cut = value if len(value) <= SHOWN else value[: SHOWN - 1] + "…"
        return repr(cut)
    return f"a {type(value).__name__}"


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader; the document is composed first so its mappings can be checked for keys given
    twice (with their lines) before construction keeps only the last of each."""


_BOOL = "tag:yaml.org,2002:bool"
_STR = "tag:yaml.org,2002:str"


def keys_as_written(root: yaml.Node | None) -> None:
    """A mapping key YAML 1.1 reads as a boolean (``on``, ``yes``, ``off``) is kept as the word written: every
    key of a catalog is a name, and ``retry: {on: [failed]}`` means the field ``on``, not ``True``."""
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag == _BOOL and key.style is None:
                    key.tag = _STR
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def line_number(line: str, source: str) -> int:
    """The line a placed problem names (0 for one about the whole file)."""
    rest = line[len(source) + 1 :] if line.startswith(f"{source}:") else ""
    number = rest.split(":", 1)[0]
    return int(number) if number.isdigit() else 0


def duplicate_keys(root: yaml.Node | None, source: str) -> list[str]:
    """Every key given twice in a mapping, at any depth: ``file:line: path: 'key' is given twice (…)``."""
    found: list[str] = []
    seen: set[int] = set()  # aliases share nodes; an anchor is checked once

    def walk(node: yaml.Node, path: str) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")
        elif isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else None
                where = f"{path}.{name}" if path and name is not None else (name or path)
                if name is not None:
                    line = key.start_mark.line + 1
                    # the resolved tag tells 1 from "1"; two spellings of one scalar count as different keys
                    ident = (key.tag, name)
                    if ident in first:
                        found.append(
                            f"{source}:{line}: {where}: the key {shown(name)} is given twice (first at "
                            f"{source}:{first[ident]}); YAML would keep only the last: remove one"
                        )
                    else:
                        first[ident] = line
                walk(value, where)

    if root is not None:
        walk(root, "")
    return found


def marks(root: yaml.Node | None) -> dict[str, int]:
    """Each dotted path of the document (list items as ``routes[0]``) → the line it is written on: a mapping
    entry's key, a list item's start."""
    found: dict[str, int] = {}
    seen: set[int] = set()

    def walk(node: yaml.Node, path: str) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                found[f"{path}[{i}]"] = item.start_mark.line + 1
                walk(item, f"{path}[{i}]")
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue
                where = f"{path}.{key.value}" if path else str(key.value)
                found[where] = key.start_mark.line + 1  # the last of a key given twice: the one YAML keeps
                walk(value, where)

    if root is not None:
        found[""] = root.start_mark.line + 1
        walk(root, "")
    return found


def placed(line: str, marks: Mapping[str, int], source: str) -> str:
    """``path: problem`` → ``file:line: path: problem``, the line of the longest part of the path the file has
    (a missing key is reported at its mapping's line)."""
    if line.startswith(f"{source}:"):
        return line
    path = line.split(": ", 1)[0]
    if path not in marks:  # pydantic writes a list item as owners.0
        path = _INDEX.sub(r"[\1]", path)
    while path and path not in marks:
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return f"{source}:{marks.get(path, 1)}: {line}"
