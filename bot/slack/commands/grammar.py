"""The ``/pipeline`` grammar: one table of commands and one parser over it.

``COMMANDS`` is the single source of truth: ``parse`` binds tokens to its ``ArgSpec``s and ``help.py``
renders it, so help can never describe a command the parser does not know, or miss one it does. Pure:
the caller passes the catalog's names and gets ``Parsed`` or ``ParseError`` back; ``parse`` never raises,
whatever a person (or a phone keyboard) typed, so the listener always has a reply to give.

The input is a slash command's ``text`` as Slack sends it: ``&``, ``<``, ``>`` HTML-escaped, and with
``should_escape: true`` channels as ``<#C0123ABCD|data-alerts>``. Every ``ParseError.message`` is mrkdwn
with the typed text escaped; ``usage`` and ``suggestion`` are plain text, to be escaped by whoever shows them.

The command table is ``table.py``, tokens and parameters ``words.py``, one converter per argument kind
``arguments.py``; this module binds them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType

from bot.ops.text import UNTYPABLE
from bot.slack.commands.arguments import CONVERTERS, SHAPED, pipeline_or_workflow
from bot.slack.commands.table import (
    BY_WORD,
    COMMANDS,
    MAX_COUNT,
    MAX_TEXT,
    AdHocTarget,
    ArgKind,
    ArgSpec,
    CommandSpec,
    Needs,
    Parsed,
    ParseError,
    spec_named,
)
from bot.slack.commands.words import Context, Problem, close_to, key_values, shown, tokenize
from bot.slack.text import code

__all__ = [
    "COMMANDS",
    "MAX_COUNT",
    "MAX_TEXT",
    "AdHocTarget",
    "ArgKind",
    "ArgSpec",
    "CommandSpec",
    "Needs",
    "ParseError",
    "Parsed",
    "parse",
    "spec_named",
]

# control and bidi characters (bot/ops/text.py UNTYPABLE)
_UNTYPABLE = UNTYPABLE


# -- the parser ------------------------------------------------------------------------------------


def _typed_length(text: str) -> int:
    """How many characters the person typed: Slack sends ``&``, ``<`` and ``>`` escaped (``&amp;`` is one)."""
    return len(text) - 4 * text.count("&amp;") - 3 * text.count("&lt;") - 3 * text.count("&gt;")


def parse(
    text: str,
    *,
    pipelines: Collection[str],
    providers: Collection[str],
    command: str = "/pipeline",
    connections: Collection[str] = (),
    workflows: Collection[str] = (),
) -> Parsed | ParseError:
    """A slash command's text → the command and its typed arguments, or an error a person can act on.

    Empty text is ``help``. Bare ``run`` asks for the modal (``open_modal``). Parameter values are not checked
    against the pipeline: the service does that with the catalog; here only the key=value shape is.
    """
    typed = _typed_length(text)
    if typed > MAX_TEXT:
        return ParseError(
            f"That command is {typed:,} characters long; {code(command)} takes at most {MAX_TEXT:,}. "
            "Shorten it: long values belong in the pipeline's own configuration."
        )
    untypable = _UNTYPABLE.search(text)
    if untypable is not None:
        return ParseError(
            f"That command contains an invisible control character (U+{ord(untypable.group()):04X}), "
            "perhaps from a copy and paste. Retype it without."
        )
    ctx = Context(command, tuple(pipelines), tuple(workflows), tuple(providers), tuple(connections))
    tokens = tokenize(text, command)
    if isinstance(tokens, ParseError):
        return tokens
    if not tokens:
        return Parsed(BY_WORD["help"])
    spec = spec_named(tokens[0])
    if spec is None:
        return _unknown_command(tokens[0], tokens[1:], ctx)
    if not tokens[1:] and spec.modal_when_bare:
        return Parsed(spec, open_modal=True)
    return _bind(spec, tokens[1:], ctx)


def _unknown_command(word: str, rest: Sequence[str], ctx: Context) -> ParseError:
    """A typo of a command, or a pipeline typed where the command goes (``/pipeline leads-ods``)."""
    help_line = code(f"{ctx.command} help")
    target = pipeline_or_workflow(word, ctx)
    if isinstance(target, str | AdHocTarget):
        line = ctx.line("run", [word if isinstance(target, AdHocTarget) else target, *rest])
        return ParseError(f"{shown(word)} is not a command. Did you mean {code(line)}?", suggestion=line)
    close = close_to(word.lower(), list(BY_WORD), n=1)
    if close:
        spec = BY_WORD[close[0]]
        line = ctx.line(spec.name, rest)
        return ParseError(
            f"Unknown command {shown(word)}. Did you mean {code(spec.name)}? Try {help_line}.",
            usage=f"{ctx.command} {spec.usage}",
            suggestion=line,
        )
    if isinstance(target, Problem) and target.replacement is not None:
        line = ctx.line("run", [target.replacement, *rest])
        return ParseError(f"Unknown command {shown(word)}. Did you mean {code(line)}?", suggestion=line)
    names = ", ".join(spec.name for spec in COMMANDS)
    return ParseError(f"Unknown command {shown(word)}. The commands are {names}. Try {help_line}.")


def _bind(spec: CommandSpec, tokens: Sequence[str], ctx: Context) -> Parsed | ParseError:
    """Tokens → the spec's arguments in order; optional ones get their default or stay absent."""
    usage = f"{ctx.command} {spec.usage}"
    values: dict[str, object] = {}
    at = 0
    for index, arg in enumerate(spec.args):
        if arg.kind == "params":
            result = key_values(tokens[at:])
            if isinstance(result, tuple):
                return ParseError(result[1], usage=usage)
            values[arg.name] = result
            at = len(tokens)
            continue
        if at >= len(tokens) or _belongs_to_next(arg, spec.args[index + 1 :], tokens[at], ctx):
            if arg.required:
                return _missing(spec, arg, ctx)
            if arg.default is not None:
                values[arg.name] = arg.default
            continue
        value = CONVERTERS[arg.kind](tokens[at], ctx)
        if isinstance(value, Problem):
            return _refused(spec, value, tokens, at, ctx)
        values[arg.name] = value
        at += 1
    if at < len(tokens):
        return _too_many(spec, tokens[:at], tokens[at:], ctx)
    return Parsed(spec, MappingProxyType(values))


def _belongs_to_next(arg: ArgSpec, later: Sequence[ArgSpec], token: str, ctx: Context) -> bool:
    if arg.required or not later or later[0].kind not in SHAPED:
        return False
    value = CONVERTERS[later[0].kind](token, ctx)
    return not isinstance(value, Problem) or value.shaped


def _refused(spec: CommandSpec, problem: Problem, tokens: Sequence[str], at: int, ctx: Context) -> ParseError:
    line = problem.line
    if line is None and problem.replacement is not None:
        line = ctx.line(spec.name, [*tokens[:at], problem.replacement, *tokens[at + 1 :]])
    return ParseError(problem.message, usage=f"{ctx.command} {spec.usage}", suggestion=line)


_NOUNS: Mapping[ArgKind, str] = {
    "pipeline": "a pipeline name",
    "pipeline_or_workflow": "a pipeline or workflow name",
    "run": "a run number like 42 or #42",
    "count": f"a number of runs from 1 to {MAX_COUNT}",
    "period": "a period like 24h, 7d or 30d",
    "duration": "a duration like 30m, 1h or 2d",
    "channel": "a channel like #data-alerts",
    "filter": "a provider or a tag",
    "params": "key=value parameters",
    "command": "a command name",
    "subject": "a pipeline, a tag or a provider",
    "level": "failures or all",
    "me": "me",
    "switch": "on or off",
    "mine": "mine",
}


def _missing(spec: CommandSpec, arg: ArgSpec, ctx: Context) -> ParseError:
    hint = ""
    if arg.kind in ("pipeline", "pipeline_or_workflow", "subject") and ctx.pipelines:
        names = sorted(ctx.pipelines, key=str.lower)
        hint = f" For example {code(ctx.line(spec.name, [names[0]]))}; {code(ctx.command + ' list')} shows them all."
    elif arg.kind == "run":
        hint = f" {code(ctx.command + ' status')} lists the runs in flight."
    message = f"{code(ctx.command + ' ' + spec.name)} needs {_NOUNS[arg.kind]}.{hint}"
    return ParseError(message, usage=f"{ctx.command} {spec.usage}")


def _too_many(spec: CommandSpec, taken: Sequence[str], extra: Sequence[str], ctx: Context) -> ParseError:
    listed = ", ".join(shown(t) for t in extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
    hint = " Only run takes key=value parameters." if any("=" in t for t in extra) else ""
    accepted = ctx.line(spec.name, taken)
    return ParseError(
        f"Unexpected {listed} after {code(accepted)}.{hint}", usage=f"{ctx.command} {spec.usage}", suggestion=accepted
    )
