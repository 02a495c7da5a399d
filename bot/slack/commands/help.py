"""Help text generated from ``COMMANDS`` alone, so what help says is exactly what the parser accepts.

Output is mrkdwn: usage lines go through ``code`` (their ``<pipeline>`` would otherwise read as a Slack
link), the rest through ``escape``. The slash command is a parameter because it is configurable.

The table's examples name the demo's pipelines. Given the catalog in use, ``examples`` names its pipelines
instead, each able to do what its example asks (``archive`` a Tailer one, ``watch`` one whose connection lists
runs, ``run … key=value`` one with that parameter), so an example can be pasted and works; where the catalog has
nothing that fits, the table's example stays, as an illustration of the syntax.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta

from bot.catalog.catalog import Catalog
from bot.catalog.model import Pipeline
from bot.slack.commands.grammar import COMMANDS, ArgSpec, CommandSpec, Needs, spec_named
from bot.slack.text import code, escape

__all__ = ["Can", "command_help", "examples", "help_for", "help_text"]

#: whether a pipeline's connection can do an operation (a ``Capability`` value): the handler asks the clients
Can = Callable[[Pipeline, str], bool]

#: the demo's pipelines and workflow the table's examples name (bot/demo/catalog.yml)
_TABLE_PIPELINES = frozenset({"leads-ods", "iowa-liquor-pda"})
_TABLE_WORKFLOW = "daily-sales"
_TABLE_PROVIDER, _TABLE_TAG = "rivery", "finance"
#: what a command's example pipeline must be able to do
_CAPABILITY = {
    "last": "list_runs",
    "watch": "list_runs",
    "enable": "enable",
    "disable": "disable",
    "archive": "archive",
    "reset": "reset",
}
#: a value of each parameter type, for ``run <pipeline> key=value``
_SAMPLE = {"date": "2024-01-31", "int": "1", "bool": "true", "string": "value"}

_NEEDS: Mapping[Needs, str] = {
    "nothing": "Anyone can use it.",
    "run": "Needs the right to run the pipeline (allow_run in the catalog); jobs outside the catalog need an admin.",
    "change": "Needs the right to change the pipeline (allow_change in the catalog).",
    "admin": "Admins only.",
    "starter": "Whoever started the run may; so may allow_change in the catalog.",
    "owner": "The pipeline's owners (people, user-group members) may, for up to 24 h; allow_change, for longer.",
}


def help_text(command: str = "/pipeline") -> str:
    """One line per command, in table order: the answer to bare ``/pipeline`` and ``/pipeline help``."""
    lines = [f"*{escape(command)}*: run and watch data pipelines from Slack."]
    lines += [_headline(spec, command) for spec in COMMANDS]
    lines.append(f"Details and examples: {code(command + ' help <command>')}")
    return "\n".join(lines)


def command_help(
    spec: CommandSpec, command: str = "/pipeline", catalog: Catalog | None = None, can: Can | None = None
) -> str:
    """One command in full: usage, what it does, its arguments and defaults, aliases, examples (from ``catalog``
    when given, see ``examples``), permission."""
    lines = [_headline(spec, command)]
    if spec.details:
        lines += escape(_fill(spec.details, command)).splitlines()
    if spec.args:
        lines.append("*Arguments*")
        lines += [f"• {code(_label(arg))} {escape(_fill(arg.help, command))}{_default(arg)}" for arg in spec.args]
    if spec.aliases:
        lines.append("Also written: " + ", ".join(code(f"{command} {alias}") for alias in spec.aliases))
    shown = examples(spec, catalog, can)
    if shown:
        lines.append("*Examples*")
        lines += [f"• {code(f'{command} {example}')}" for example in shown]
    lines.append(escape(_NEEDS[spec.needs]))
    return "\n".join(lines)


def help_for(
    name: object = None, command: str = "/pipeline", catalog: Catalog | None = None, can: Can | None = None
) -> str:
    """``help_text`` or, for a command name (``Parsed.args.get("command")``), that command's help."""
    spec = spec_named(name) if isinstance(name, str) else None
    return help_text(command) if spec is None else command_help(spec, command, catalog, can)


def examples(spec: CommandSpec, catalog: Catalog | None = None, can: Can | None = None) -> tuple[str, ...]:
    """The command's examples, naming ``catalog``'s pipelines where it has one that fits (see the module doc)."""
    if catalog is None or not catalog.pipelines:
        return spec.examples
    found = (_example(spec, example, catalog, can) for example in spec.examples)
    return tuple(dict.fromkeys(e for e in found if e is not None))


def _example(spec: CommandSpec, example: str, catalog: Catalog, can: Can | None) -> str | None:
    """One example with the catalog's names; None when it shows what the catalog lacks (a workflow, tags)."""
    words = example.split()
    if len(words) < 2:
        return example
    name, rest = words[1], words[2:]
    if spec.name == "list":
        return _list_example(words[0], name, catalog)
    if spec.name in ("subscribe", "unsubscribe") and name in (_TABLE_PROVIDER, _TABLE_TAG):
        found = _list_example(words[0], name, catalog)
        return None if found is None else " ".join([found, *rest])
    if name == _TABLE_WORKFLOW:
        return f"{words[0]} {next(iter(catalog.workflows))}" if catalog.workflows else None
    if name not in _TABLE_PIPELINES:
        return example
    keys = [w.partition("=")[0] for w in rest if "=" in w]
    needed = _CAPABILITY.get(spec.name)

    def fits(pipeline: Pipeline) -> bool:
        if needed is not None and can is not None and not can(pipeline, needed):
            return False
        return not keys or _sample(pipeline) is not None

    def takes_keys(pipeline: Pipeline) -> bool:
        return all(key in pipeline.parameters for key in keys)

    table = catalog.pipelines.get(name)
    if table is not None and fits(table) and takes_keys(table):
        return example
    chosen = next((p for p in catalog.pipelines.values() if fits(p) and takes_keys(p)), None)
    chosen = chosen or next((p for p in catalog.pipelines.values() if fits(p)), None)
    if chosen is None:
        return example
    if not takes_keys(chosen):
        rest = [w for w in rest if "=" not in w] + [str(_sample(chosen))]
    return " ".join([words[0], chosen.name, *rest])


def _list_example(verb: str, word: str, catalog: Catalog) -> str | None:
    providers = list(dict.fromkeys(p.provider for p in catalog.pipelines.values()))
    tags = list(dict.fromkeys(t for p in catalog.pipelines.values() for t in p.tags))
    if word == _TABLE_PROVIDER:
        return f"{verb} {word if word in providers else providers[0]}"
    if word == _TABLE_TAG:
        return f"{verb} {word if word in tags else tags[0]}" if tags else None
    return f"{verb} {word}"


def _sample(pipeline: Pipeline) -> str | None:
    """``key=value`` for the pipeline's first parameter, with a value its type takes."""
    for key, param in pipeline.parameters.items():
        value = param.choices[0] if param.type == "choice" and param.choices else param.default or _SAMPLE[param.type]
        if all(c.isalnum() or c in "-_.:/" for c in value) and key.replace("_", "").replace("-", "").isalnum():
            return f"{key}={value}"
    return None


def _headline(spec: CommandSpec, command: str) -> str:
    return f"{code(f'{command} {spec.usage}')} — {escape(spec.summary)}"


def _fill(text: str, command: str) -> str:
    """Table texts say ``{command}`` where the configured slash command goes (not ``format``: braces stay)."""
    return text.replace("{command}", command)


def _label(arg: ArgSpec) -> str:
    if arg.kind == "params":
        return "[key=value …]"
    return f"<{arg.name}>" if arg.required else f"[{arg.name}]"


def _default(arg: ArgSpec) -> str:
    if arg.default is None:
        return ""
    shown = _compact(arg.default) if isinstance(arg.default, timedelta) else str(arg.default)
    return f" (default {escape(shown)})"


def _compact(span: timedelta) -> str:
    """``7d``, ``1h``, ``90m``: the form people type, so a default can be copied back as a value."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
