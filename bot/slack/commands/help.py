"""Help text generated from ``COMMANDS`` alone, so what help says is exactly what the parser accepts.

Output is mrkdwn: usage lines go through ``code`` (their ``<pipeline>`` would otherwise read as a Slack
link), the rest through ``escape``. The slash command is a parameter because it is configurable.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from bot.slack.commands.grammar import COMMANDS, ArgSpec, CommandSpec, Needs, spec_named
from bot.slack.text import code, escape

__all__ = ["command_help", "help_for", "help_text"]

_NEEDS: Mapping[Needs, str] = {
    "nothing": "Anyone can use it.",
    "run": "Needs the right to run the pipeline (allow_run in the catalog); jobs outside the catalog need an admin.",
    "change": "Needs the right to change the pipeline (allow_change in the catalog).",
    "admin": "Admins only.",
}


def help_text(command: str = "/pipeline") -> str:
    """One line per command, in table order: the answer to bare ``/pipeline`` and ``/pipeline help``."""
    lines = [f"*{escape(command)}*: run and watch data pipelines from Slack."]
    lines += [_headline(spec, command) for spec in COMMANDS]
    lines.append(f"Details and examples: {code(command + ' help <command>')}")
    return "\n".join(lines)


def command_help(spec: CommandSpec, command: str = "/pipeline") -> str:
    """One command in full: usage, what it does, its arguments and defaults, aliases, examples, permission."""
    lines = [_headline(spec, command)]
    if spec.details:
        lines += escape(_fill(spec.details, command)).splitlines()
    if spec.args:
        lines.append("*Arguments*")
        lines += [f"• {code(_label(arg))} {escape(_fill(arg.help, command))}{_default(arg)}" for arg in spec.args]
    if spec.aliases:
        lines.append("Also written: " + ", ".join(code(f"{command} {alias}") for alias in spec.aliases))
    if spec.examples:
        lines.append("*Examples*")
        lines += [f"• {code(f'{command} {example}')}" for example in spec.examples]
    lines.append(escape(_NEEDS[spec.needs]))
    return "\n".join(lines)


def help_for(name: object = None, command: str = "/pipeline") -> str:
    """``help_text`` or, for a command name (``Parsed.args.get("command")``), that command's help."""
    spec = spec_named(name) if isinstance(name, str) else None
    return help_text(command) if spec is None else command_help(spec, command)


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
