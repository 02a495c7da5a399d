"""The ``/pipeline`` grammar: one table of commands and one parser over it.

``COMMANDS`` is the single source of truth: ``parse`` binds tokens to its ``ArgSpec``s and ``help.py``
renders it, so help can never describe a command the parser does not know, or miss one it does. Pure:
the caller passes the catalog's names and gets ``Parsed`` or ``ParseError`` back; ``parse`` never raises,
whatever a person (or a phone keyboard) typed, so the listener always has a reply to give.

The input is a slash command's ``text`` as Slack sends it: ``&``, ``<``, ``>`` HTML-escaped, and with
``should_escape: true`` channels as ``<#C0123ABCD|data-alerts>``. Every ``ParseError.message`` is mrkdwn
with the typed text escaped; ``usage`` and ``suggestion`` are plain text, to be escaped by whoever shows them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Literal

from bot.catalog.model import parse_duration
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

Needs = Literal["nothing", "run", "change", "admin"]
ArgKind = Literal[
    "pipeline", "pipeline_or_workflow", "run", "count", "period", "duration", "channel", "filter", "params", "command"
]

MAX_COUNT = 50
# Slack's own box stops a slash command's text at a few thousand characters: anything longer was not typed
# there, and is refused before any work is done on it
MAX_TEXT = 4000
MAX_PERIOD = timedelta(days=366)
MAX_MUTE = timedelta(days=30)
_SHOWN = 60  # characters of a typed token echoed back: enough to recognise it, never a wall of text
_LISTED = 5  # pipeline names listed when none is close to what was typed
# control characters (C0, DEL, C1) but the whitespace the tokenizer splits on, and the bidi controls that make
# text display in an order other than the one it is stored in: nobody types them in Slack's box, PostgreSQL
# refuses NUL in text, and a right-to-left override in an id echoed to a channel disguises what it names
_UNTYPABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
MAX_AD_HOC_ID = 200  # the runs table's provider ids hold 200 characters; no provider's job id comes near
# every provider's job ids (Rivery's hex ids, InVision's GUIDs, DataKitchen's kitchen/recipe/variation names,
# Tailer's account/environment/type/config/job, whose job ids hold templates like ``{{FD_DATE}}``) are spelt in these
_AD_HOC_ID = re.compile(r"[A-Za-z0-9_.:|/{}-]+")


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """One argument of a command. ``default`` is filled in when an optional argument is absent.

    Values by kind: pipeline / pipeline_or_workflow → the catalog's ``str`` name or an ``AdHocTarget``;
    run, count → ``int``; period, duration → ``timedelta``; channel → ``"C0123ABCD"`` or ``"#name"``;
    filter → a provider key in its canonical spelling, else the tag as typed; command → a command's name;
    params → ``dict[str, str]`` (empty when none were given).
    """

    name: str
    kind: ArgKind
    required: bool = False
    default: int | timedelta | None = None
    help: str = ""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One row of the table. ``examples`` omit the slash command, which is configurable; they name the demo's
    pipelines (``bot/demo/catalog.yml``, where each works) and help swaps in the catalog's own (``help.py``)."""

    name: str
    usage: str
    summary: str
    details: str = ""
    examples: tuple[str, ...] = ()
    args: tuple[ArgSpec, ...] = ()
    needs: Needs = "nothing"
    aliases: tuple[str, ...] = ()
    modal_when_bare: bool = False


@dataclass(frozen=True, slots=True)
class AdHocTarget:
    """``rivery:12345``: a job outside the catalog, on a provider's (or a named connection's) account."""

    provider_or_connection: str
    ident: str


@dataclass(frozen=True, slots=True)
class Parsed:
    """A command the service can act on: typed ``args`` (defaults filled in, absent optionals left out)."""

    spec: CommandSpec
    args: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    open_modal: bool = False

    @property
    def needs(self) -> Needs:
        """The permission to check: ad-hoc targets bypass the catalog's allow lists, so only admins use them."""
        if any(isinstance(value, AdHocTarget) for value in self.args.values()):
            return "admin"
        return self.spec.needs


@dataclass(frozen=True, slots=True)
class ParseError:
    """What was wrong and what would work.

    ``message`` is mrkdwn, complete on its own except for the usage line: show ``usage`` under it (the message
    does not repeat it). ``usage`` and ``suggestion`` (a corrected command line) are plain text: escape them.
    """

    message: str
    usage: str | None = None
    suggestion: str | None = None


_PIPELINE = ArgSpec("pipeline", "pipeline", required=True, help="a pipeline name (see `{command} list`)")
_TARGET = ArgSpec(
    "pipeline", "pipeline_or_workflow", required=True, help="a pipeline or workflow name (see `{command} list`)"
)

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "run",
        "run <pipeline> [key=value …]",
        "Run a pipeline or workflow; with no name, pick one in a form",
        "Parameters override the pipeline's defaults (DataKitchen parameters, Tailer `execution_date`, …).\n"
        'Quote a value with spaces: `note="two words"`.\n'
        "Admins can run a job outside the catalog: `rivery:<river id>`.",
        ("run leads-ods", "run leads-ods execution_date=2024-01-31", "run daily-sales", "run"),
        (_TARGET, ArgSpec("params", "params", help="parameters as key=value")),
        "run",
        modal_when_bare=True,
    ),
    CommandSpec(
        "status",
        "status [<run>]",
        "One run's card, or every run in flight",
        "Without a run number, lists the runs in flight.",
        ("status", "status 1", "status #1"),
        (ArgSpec("run", "run", help="a run number like 42 or #42"),),
    ),
    CommandSpec(
        "last",
        "last <pipeline> [n]",
        "The last n runs of a pipeline, with durations and a trend",
        f"Shows 10 runs unless you ask for another number, up to {MAX_COUNT}.",
        ("last leads-ods", "last leads-ods 25"),
        (_PIPELINE, ArgSpec("n", "count", default=10, help=f"how many runs, 1 to {MAX_COUNT}")),
    ),
    CommandSpec(
        "list",
        "list [provider|tag]",
        "The catalog, each pipeline with a Run button",
        "Narrow it to one provider (rivery, tailer, invision, datakitchen) or to a tag.",
        ("list", "list rivery", "list finance"),
        (ArgSpec("filter", "filter", help="a provider or a tag"),),
        aliases=("ls",),
    ),
    CommandSpec(
        "cancel",
        "cancel <run>",
        "Cancel a run in flight (Rivery, DataKitchen); asks to confirm",
        "`{command} status` lists the runs in flight with their numbers.",
        ("cancel 1",),
        (ArgSpec("run", "run", required=True, help="a run number like 42 or #42"),),
        "change",
    ),
    CommandSpec(
        "enable",
        "enable <pipeline>",
        "Switch a pipeline on at its provider; asks to confirm",
        "Tailer configuration status, Rivery activate, DataKitchen unpause where it maps.",
        ("enable leads-ods",),
        (_PIPELINE,),
        "change",
    ),
    CommandSpec(
        "disable",
        "disable <pipeline>",
        "Switch a pipeline off at its provider; asks to confirm",
        "Tailer configuration status, Rivery disable, DataKitchen pause where it maps.",
        ("disable leads-ods",),
        (_PIPELINE,),
        "change",
    ),
    CommandSpec(
        "archive",
        "archive <pipeline>",
        "Archive a pipeline at its provider (Tailer); asks to confirm",
        "",
        ("archive iowa-liquor-pda",),
        (_PIPELINE,),
        "change",
    ),
    CommandSpec(
        "reset",
        "reset <pipeline>",
        "Reset a Tailer workflow; asks to confirm",
        "",
        ("reset iowa-liquor-pda",),
        (_PIPELINE,),
        "change",
    ),
    CommandSpec(
        "stats",
        "stats [<pipeline>] [period]",
        "Run counts, failure rate and durations over a period",
        "Without a pipeline, covers them all. The period defaults to 7d; write it like 24h, 7d, 2w or 30d.",
        ("stats", "stats 24h", "stats leads-ods", "stats leads-ods 30d"),
        (
            ArgSpec("pipeline", "pipeline", help="a pipeline name; all pipelines if left out"),
            ArgSpec("period", "period", default=timedelta(days=7), help="how far back, like 24h, 7d or 30d"),
        ),
    ),
    CommandSpec(
        "watch",
        "watch <pipeline> [#channel]",
        "Alert on runs started outside Slack (schedules, provider consoles)",
        "Alerts go to the channel you name, else the pipeline's own channel.",
        ("watch leads-ods", "watch leads-ods #data-alerts"),
        (_PIPELINE, ArgSpec("channel", "channel", help="where the alerts go, like #data-alerts")),
        "change",
    ),
    CommandSpec(
        "unwatch",
        "unwatch <pipeline>",
        "Stop watching a pipeline's runs started outside Slack",
        "",
        ("unwatch leads-ods",),
        (_PIPELINE,),
        "change",
    ),
    CommandSpec(
        "mute",
        "mute <pipeline> [duration]",
        "Silence a pipeline's alerts for a while",
        "Mutes for 1h unless you say otherwise, up to 30d. Runs are still tracked; only the alerts wait.",
        ("mute leads-ods", "mute leads-ods 4h"),
        (_PIPELINE, ArgSpec("duration", "duration", default=timedelta(hours=1), help="how long, like 30m, 4h or 2d")),
        "change",
    ),
    CommandSpec(
        "unmute",
        "unmute <pipeline>",
        "Let a muted pipeline's alerts through again",
        "",
        ("unmute leads-ods",),
        (_PIPELINE,),
        "change",
    ),
    CommandSpec(
        "schedules",
        "schedules",
        "The next scheduled runs of pipelines and workflows",
        "",
        ("schedules",),
        aliases=("schedule",),
    ),
    CommandSpec(
        "help",
        "help [command]",
        "This list, or one command in detail",
        "",
        ("help", "help run"),
        (ArgSpec("command", "command", help="a command name"),),
        aliases=("?", "-h", "--help"),
    ),
)

_BY_WORD: Mapping[str, CommandSpec] = MappingProxyType(
    {word: spec for spec in COMMANDS for word in (spec.name, *spec.aliases)}
)
_HELP = _BY_WORD["help"]


def spec_named(word: str) -> CommandSpec | None:
    """The command a name or alias stands for, any case."""
    return _BY_WORD.get(word.strip().lower())


# -- context and small helpers ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    command: str
    pipelines: tuple[str, ...]
    workflows: tuple[str, ...]
    providers: tuple[str, ...]
    connections: tuple[str, ...]

    def line(self, name: str, tokens: Sequence[str]) -> str:
        """A command line a person could paste back: ``/pipeline run leads-ods note="two words"``."""
        return " ".join([self.command, name, *(_requote(t) for t in tokens)])


@dataclass(frozen=True, slots=True)
class _Problem:
    """A converter's refusal; ``replacement`` is the token it guesses was meant, ``line`` a whole new command.

    ``shaped``: the token has the kind's form but a value out of range (``51`` runs, ``400d``), so it was
    meant for this argument and the person should hear about the range, not about an unknown pipeline.
    """

    message: str
    replacement: str | None = None
    line: str | None = None
    shaped: bool = False


def _shown(token: str) -> str:
    """Typed text echoed back: cut short, escaped, in code so it stands apart from the explanation."""
    return code(token if len(token) <= _SHOWN else token[: _SHOWN - 1] + "…")


def _requote(token: str) -> str:
    if token and not any(c.isspace() or c in "\"'" for c in token):
        return token
    key, eq, value = token.partition("=")
    if eq and key and not any(c.isspace() or c in "\"'" for c in key):
        return f"{key}={_quoted(value)}"
    return _quoted(token)


def _quoted(text: str) -> str:
    if '"' not in text:
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    return '"' + text.replace('"', "'") + '"'


def _match(word: str, options: Sequence[str]) -> str | None:
    """Exact first, then the one option equal ignoring case (None when several are)."""
    if word in options:
        return word
    folded = [o for o in options if o.lower() == word.lower()]
    return folded[0] if len(folded) == 1 else None


def _close(word: str, options: Sequence[str], n: int = 3) -> list[str]:
    """Names that contain what was typed (``leads`` → ``leads-ods``), then difflib's close matches."""
    lowered = {o.lower(): o for o in options}
    needle = word.lower()
    found = sorted((o for low, o in lowered.items() if len(needle) >= 3 and needle in low), key=len)
    found += [lowered[m] for m in difflib.get_close_matches(needle, list(lowered), n=n, cutoff=0.6)]
    return list(dict.fromkeys(found))[:n]


def _either(names: Sequence[str]) -> str:
    return " or ".join(code(n) for n in names)


# -- tokens ----------------------------------------------------------------------------------------

_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
# Phones type curly quotes; some keyboards insert no-break or zero-width spaces.
_NORMALIZE = str.maketrans(
    {
        **dict.fromkeys("“”„‟″", '"'),
        **dict.fromkeys("‘’‚‛′", "'"),
        **dict.fromkeys("\u00a0\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B))), " "),
        **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff"),
    }
)


_WITH_SPACES = code('note="two words"')
_WITH_APOSTROPHE = code('note="don\'t"')


def _tokenize(text: str, command: str) -> list[str] | ParseError:
    """Slack's entities undone, quotes honoured; backslashes stay literal (Windows paths, regexes)."""
    plain = _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text).translate(_NORMALIZE)
    tokens = _split(plain)
    if tokens is None:
        words = plain.split()
        spec = spec_named(words[0]) if words else None
        return ParseError(
            f"A quote is not closed. Put quotes on both sides of a value with spaces, like {_WITH_SPACES}; "
            f"for an apostrophe inside a value, use double quotes: {_WITH_APOSTROPHE}.",
            usage=None if spec is None else f"{command} {spec.usage}",
        )
    return tokens


# One regex match per run of spaces, quoted part or bare part, each found by the regex engine in one pass:
# the split is linear in the text. (shlex, used before, grew each token one character at a time by string
# concatenation, which made a long token quadratic: 500 KB took seconds while the event loop waited.)
_PIECE = re.compile(r"""(?P<space>[ \t\r\n]+)|'(?P<single>[^']*)'|"(?P<double>[^"]*)"|(?P<bare>[^ \t\r\n'"]+)""")


def _split(text: str) -> list[str] | None:
    """Split like POSIX ``shlex`` with ``whitespace_split`` and no escapes or comments: quotes group and are
    removed (``a"b c"d`` is ``ab cd``, ``""`` an empty token); None when a quote is not closed."""
    tokens: list[str] = []
    parts: list[str] = []
    quoted = False  # an empty pair of quotes still makes a token
    at = 0
    for piece in _PIECE.finditer(text):
        if piece.start() != at:
            return None  # only an opening quote without its closing one matches nothing
        at = piece.end()
        if piece.lastgroup == "space":
            if parts or quoted:
                tokens.append("".join(parts))
            parts, quoted = [], False
            continue
        quoted = quoted or piece.lastgroup != "bare"
        parts.append(piece.group(piece.lastgroup or "bare"))
    if at != len(text):
        return None
    if parts or quoted:
        tokens.append("".join(parts))
    return tokens


# -- converters: one per argument kind, token → value or _Problem ------------------------------------


def _target(token: str, ctx: _Context, *, workflows: bool) -> object:
    names = ctx.pipelines + ctx.workflows if workflows else ctx.pipelines
    found = _match(token, names)
    if found is not None:
        return found
    noun = "pipeline or workflow" if workflows else "pipeline"
    if ":" in token and "=" not in token.partition(":")[0]:
        return _ad_hoc(token, ctx)
    if "=" in token:
        example = code(f"{ctx.command} run <pipeline> key=value")
        return _Problem(f"Name the {noun} first, then its parameters: {example}.")
    close = _close(token, names)
    if close:
        return _Problem(f"Unknown {noun} {_shown(token)}. Did you mean {_either(close)}?", replacement=close[0])
    if not names:
        return _Problem(f"Unknown {noun} {_shown(token)}: the catalog has no pipelines yet (see pipelines.yml).")
    listed = ", ".join(code(n) for n in sorted(names, key=str.lower)[:_LISTED])
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return _Problem(f"Unknown {noun} {_shown(token)}. Known: {listed}{more}; see {code(ctx.command + ' list')}.")


def _ad_hoc(token: str, ctx: _Context) -> object:
    prefix, _, ident = token.partition(":")
    owner = _match(prefix, ctx.providers) or _match(prefix, ctx.connections)
    if owner is None:
        known = ctx.providers + ctx.connections
        close = _close(prefix, known, n=1)
        hint = f" Did you mean {_shown(close[0] + ':' + ident)}?" if close else ""
        return _Problem(
            f"{_shown(prefix)} is not a provider or connection.{hint} A job outside the catalog is written "
            f"provider:id, like {code('rivery:<river id>')} (providers: {', '.join(code(p) for p in ctx.providers)}).",
            replacement=f"{close[0]}:{ident}" if close else None,
        )
    if not ident.strip():
        return _Problem(f"{_shown(token)} has no id after the colon: write it like {code(owner + ':12345')}.")
    if len(ident) > MAX_AD_HOC_ID:
        return _Problem(f"The id after {code(owner + ':')} is {len(ident):,} characters long; at most {MAX_AD_HOC_ID}.")
    if not _AD_HOC_ID.fullmatch(ident):
        return _Problem(
            f"{_shown(token)} is not a job id: ids are letters, digits and {code('- _ . : | / { }')}, "
            f"like {code(owner + ':12345')}."
        )
    return AdHocTarget(owner, ident)


def _pipeline(token: str, ctx: _Context) -> object:
    return _target(token, ctx, workflows=False)


def _pipeline_or_workflow(token: str, ctx: _Context) -> object:
    return _target(token, ctx, workflows=True)


_RUN = re.compile(r"#?([0-9]{1,18})")


def _run(token: str, ctx: _Context) -> object:
    match = _RUN.fullmatch(token.strip())
    if match and int(match.group(1)) > 0:
        return int(match.group(1))
    if match:
        return _Problem(f"{_shown(token)} is not a run: run numbers start at 1, like 42 or #42.", shaped=True)
    pipeline = _match(token, ctx.pipelines)
    if pipeline is not None:
        line = ctx.line("last", [pipeline])
        return _Problem(f"{_shown(token)} is a pipeline, not a run: {code(line)} shows its runs.", line=line)
    return _Problem(
        f"{_shown(token)} is not a run: use a run number like 42 or #42 ({code(ctx.command + ' status')} lists them)."
    )


_COUNT = re.compile(r"[0-9]{1,6}")


def _count(token: str, ctx: _Context) -> object:
    shaped = _COUNT.fullmatch(token.strip()) is not None
    if shaped and 1 <= int(token) <= MAX_COUNT:
        return int(token)
    return _Problem(
        f"{_shown(token)} is not a number of runs: give a whole number from 1 to {MAX_COUNT}, like 10.", shaped=shaped
    )


_WEEKS = re.compile(r"([0-9]{1,3})\s*w")
_SPAN_SHAPE = re.compile(r"(?:[0-9]+[wdhms])+")


def _span(token: str, limit: timedelta, noun: str, examples: str) -> object:
    text = token.strip().lower()
    shaped = _SPAN_SHAPE.fullmatch(text) is not None
    weeks = _WEEKS.fullmatch(text)
    if weeks:
        text = f"{int(weeks.group(1)) * 7}d"
    try:
        value = parse_duration(text) if len(text) <= 20 else None
    except (ValueError, OverflowError):
        value = None
    if value is None:
        return _Problem(f"{_shown(token)} is not a {noun}: write it like {examples}.", shaped=shaped)
    if value > limit:
        return _Problem(f"{_shown(token)} is too long a {noun}: at most {limit.days}d.", shaped=True)
    return value


def _period(token: str, ctx: _Context) -> object:
    return _span(token, MAX_PERIOD, "period", "24h, 7d, 2w or 30d")


def _duration(token: str, ctx: _Context) -> object:
    return _span(token, MAX_MUTE, "duration", "30m, 4h, 1h30m or 2d")


_MENTION = re.compile(r"<([#@!])([^|>]*)(?:\|[^>]*)?>")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{8,}")
_CHANNEL_NAME = re.compile(r"#?([a-z0-9][a-z0-9_-]{0,79})")


def _channel(token: str, ctx: _Context) -> object:
    mention = _MENTION.fullmatch(token)
    if mention and mention.group(1) == "#" and _CHANNEL_ID.fullmatch(mention.group(2)):
        return mention.group(2)
    if mention and mention.group(1) == "@":
        return _Problem(f"{_shown(token)} is a person, not a channel: name a channel, like #data-alerts.")
    if _CHANNEL_ID.fullmatch(token):
        return token
    name = _CHANNEL_NAME.fullmatch(token.lower())
    if name and token.startswith("#"):
        return token.lower()
    if name:
        return _Problem(f"Channels start with #: did you mean {code('#' + name.group(1))}?", "#" + name.group(1))
    return _Problem(f"{_shown(token)} is not a channel: type # and pick one, like #data-alerts, or give its id.")


def _filter(token: str, ctx: _Context) -> object:
    """A provider key comes back in its canonical spelling; anything else is a tag, as typed."""
    return _match(token.lower(), ctx.providers) or token


def _command(token: str, ctx: _Context) -> object:
    spec = spec_named(token)
    if spec is not None:
        return spec.name
    close = _close(token.lower(), list(_BY_WORD), n=1)
    if close:
        name = _BY_WORD[close[0]].name
        return _Problem(f"No command {_shown(token)}. Did you mean {code(name)}?", replacement=name)
    names = ", ".join(code(spec.name) for spec in COMMANDS)
    return _Problem(f"No command {_shown(token)}. The commands are {names}.")


_CONVERTERS: Mapping[ArgKind, Callable[[str, _Context], object]] = {
    "pipeline": _pipeline,
    "pipeline_or_workflow": _pipeline_or_workflow,
    "run": _run,
    "count": _count,
    "period": _period,
    "duration": _duration,
    "channel": _channel,
    "filter": _filter,
    "command": _command,
}
# kinds recognisable by their shape alone: an optional argument before one of these is skipped when
# the token has that shape (``stats 24h`` is a period, not a pipeline named 24h)
_SHAPED: frozenset[ArgKind] = frozenset({"run", "count", "period", "duration", "channel"})


# -- key=value parameters --------------------------------------------------------------------------

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_KV_FORM = (
    f"Write parameters as key=value, like {code('execution_date=2024-01-31')}; "
    f"quote a value with spaces: {_WITH_SPACES}."
)


def _params(tokens: Sequence[str]) -> dict[str, str] | tuple[int, str]:
    """``key=value`` tokens → dict; else the index of the first bad token and why it is bad."""
    found: dict[str, str] = {}
    for index, token in enumerate(tokens):
        key, eq, value = token.partition("=")
        if not eq:
            if _spaced_equals(tokens, index):
                return index, f"Put no spaces around {code('=')}. {_KV_FORM}"
            return index, f"{_shown(token)} is not a parameter. {_KV_FORM}"
        if not key:
            return index, f"{_shown(token)} has no name before {code('=')}. {_KV_FORM}"
        if not _KEY.fullmatch(key):
            why = "has a space" if any(c.isspace() for c in key) else "is not a parameter name"
            return index, f"{_shown(key)} {why}: names use letters, digits, _ . and -. {_KV_FORM}"
        if key in found:
            return index, f"{_shown(key)} is given twice: give each parameter once."
        found[key] = value
    return found


def _spaced_equals(tokens: Sequence[str], index: int) -> bool:
    """``day = 2024`` or ``day= 2024``: the person meant one key=value and typed spaces around ``=``."""
    before = tokens[index - 1] if index > 0 else ""
    after = tokens[index + 1] if index + 1 < len(tokens) else ""
    return tokens[index] == "=" or after.startswith("=") or (before.endswith("=") and before.count("=") == 1)


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
    ctx = _Context(command, tuple(pipelines), tuple(workflows), tuple(providers), tuple(connections))
    tokens = _tokenize(text, command)
    if isinstance(tokens, ParseError):
        return tokens
    if not tokens:
        return Parsed(_HELP)
    spec = spec_named(tokens[0])
    if spec is None:
        return _unknown_command(tokens[0], tokens[1:], ctx)
    if not tokens[1:] and spec.modal_when_bare:
        return Parsed(spec, open_modal=True)
    return _bind(spec, tokens[1:], ctx)


def _unknown_command(word: str, rest: Sequence[str], ctx: _Context) -> ParseError:
    """A typo of a command, or a pipeline typed where the command goes (``/pipeline leads-ods``)."""
    help_line = code(f"{ctx.command} help")
    target = _pipeline_or_workflow(word, ctx)
    if isinstance(target, str | AdHocTarget):
        line = ctx.line("run", [word if isinstance(target, AdHocTarget) else target, *rest])
        return ParseError(f"{_shown(word)} is not a command. Did you mean {code(line)}?", suggestion=line)
    close = _close(word.lower(), list(_BY_WORD), n=1)
    if close:
        spec = _BY_WORD[close[0]]
        line = ctx.line(spec.name, rest)
        return ParseError(
            f"Unknown command {_shown(word)}. Did you mean {code(spec.name)}? Try {help_line}.",
            usage=f"{ctx.command} {spec.usage}",
            suggestion=line,
        )
    if isinstance(target, _Problem) and target.replacement is not None:
        line = ctx.line("run", [target.replacement, *rest])
        return ParseError(f"Unknown command {_shown(word)}. Did you mean {code(line)}?", suggestion=line)
    names = ", ".join(spec.name for spec in COMMANDS)
    return ParseError(f"Unknown command {_shown(word)}. The commands are {names}. Try {help_line}.")


def _bind(spec: CommandSpec, tokens: Sequence[str], ctx: _Context) -> Parsed | ParseError:
    """Tokens → the spec's arguments in order; optional ones get their default or stay absent."""
    usage = f"{ctx.command} {spec.usage}"
    values: dict[str, object] = {}
    at = 0
    for index, arg in enumerate(spec.args):
        if arg.kind == "params":
            result = _params(tokens[at:])
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
        value = _CONVERTERS[arg.kind](tokens[at], ctx)
        if isinstance(value, _Problem):
            return _refused(spec, value, tokens, at, ctx)
        values[arg.name] = value
        at += 1
    if at < len(tokens):
        return _too_many(spec, tokens[:at], tokens[at:], ctx)
    return Parsed(spec, MappingProxyType(values))


def _belongs_to_next(arg: ArgSpec, later: Sequence[ArgSpec], token: str, ctx: _Context) -> bool:
    if arg.required or not later or later[0].kind not in _SHAPED:
        return False
    value = _CONVERTERS[later[0].kind](token, ctx)
    return not isinstance(value, _Problem) or value.shaped


def _refused(spec: CommandSpec, problem: _Problem, tokens: Sequence[str], at: int, ctx: _Context) -> ParseError:
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
}


def _missing(spec: CommandSpec, arg: ArgSpec, ctx: _Context) -> ParseError:
    hint = ""
    if arg.kind in ("pipeline", "pipeline_or_workflow") and ctx.pipelines:
        names = sorted(ctx.pipelines, key=str.lower)
        hint = f" For example {code(ctx.line(spec.name, [names[0]]))}; {code(ctx.command + ' list')} shows them all."
    elif arg.kind == "run":
        hint = f" {code(ctx.command + ' status')} lists the runs in flight."
    message = f"{code(ctx.command + ' ' + spec.name)} needs {_NOUNS[arg.kind]}.{hint}"
    return ParseError(message, usage=f"{ctx.command} {spec.usage}")


def _too_many(spec: CommandSpec, taken: Sequence[str], extra: Sequence[str], ctx: _Context) -> ParseError:
    shown = ", ".join(_shown(t) for t in extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
    hint = " Only run takes key=value parameters." if any("=" in t for t in extra) else ""
    accepted = ctx.line(spec.name, taken)
    return ParseError(
        f"Unexpected {shown} after {code(accepted)}.{hint}", usage=f"{ctx.command} {spec.usage}", suggestion=accepted
    )
