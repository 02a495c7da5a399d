"""The ``/pipeline`` command table: every command, its arguments and who may use it, and the values a parse
gives back (``Parsed``, ``ParseError``, ``AdHocTarget``).

``COMMANDS`` is the single source of truth: ``bot.slack.commands.grammar.parse`` binds tokens to its
``ArgSpec``s and ``help.py`` renders it, so help can never describe a command the parser does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Literal

__all__ = [
    "BY_WORD",
    "COMMANDS",
    "MAX_COUNT",
    "MAX_MUTE",
    "MAX_PERIOD",
    "MAX_TEXT",
    "AdHocTarget",
    "ArgKind",
    "ArgSpec",
    "CommandSpec",
    "Needs",
    "ParseError",
    "Parsed",
    "spec_named",
]

Needs = Literal["nothing", "run", "change", "admin", "starter", "owner"]
ArgKind = Literal[
    "pipeline",
    "pipeline_or_workflow",
    "run",
    "count",
    "period",
    "duration",
    "channel",
    "filter",
    "params",
    "command",
    "subject",
    "level",
    "me",
    "switch",
    "mine",
]

MAX_COUNT = 50
# Slack's own box stops a slash command's text at a few thousand characters: anything longer was not typed
# there, and is refused before any work is done on it
MAX_TEXT = 4000
MAX_PERIOD = timedelta(days=366)
MAX_MUTE = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """One argument of a command. ``default`` is filled in when an optional argument is absent.

    Values by kind: pipeline / pipeline_or_workflow → the catalog's ``str`` name or an ``AdHocTarget``;
    run, count → ``int``; period, duration → ``timedelta``; channel → ``"C0123ABCD"`` or ``"#name"``;
    filter → a provider key in its canonical spelling, else the tag as typed; command → a command's name;
    params → ``dict[str, str]`` (empty when none were given); subject → the word as typed (the service finds
    the pipeline, tag or provider it names); level → "failures" or "all"; me → "me"; switch → "on" or "off";
    mine → "mine".
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

    def __str__(self) -> str:
        """As it was typed, ``rivery:12345``: what a reply names it (never the dataclass's repr)."""
        return f"{self.provider_or_connection}:{self.ident}"


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
        "The last n runs of a pipeline, newest first, with durations and a trend in the same order",
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
        "Cancel a run in flight (Rivery, DataKitchen); asks to confirm, once",
        "`{command} status` lists the runs in flight with their numbers. A run whose connection is no longer in "
        "pipelines.yml cannot be canceled from here: the prompt offers to stop following it instead.",
        ("cancel 1",),
        (ArgSpec("run", "run", required=True, help="a run number like 42 or #42"),),
        "starter",
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
        "Mutes for 1h unless you say otherwise, up to 30d. Runs are still tracked; only the alerts wait. A longer "
        "mute in force is kept: the answer offers to shorten or extend it.",
        ("mute leads-ods", "mute leads-ods 4h"),
        (_PIPELINE, ArgSpec("duration", "duration", default=timedelta(hours=1), help="how long, like 30m, 4h or 2d")),
        "owner",
    ),
    CommandSpec(
        "unmute",
        "unmute <pipeline>",
        "Let a muted pipeline's alerts through again",
        "",
        ("unmute leads-ods",),
        (_PIPELINE,),
        "owner",
    ),
    CommandSpec(
        "subscribe",
        "subscribe <pipeline|tag|provider> [#channel] [failures|all]",
        "Announce the failures of a pipeline, a tag or a provider in a channel too",
        "Posts in the channel you name, else this one; the bot must be in it. `failures` (the default): each "
        "failure alert is announced there as well as in the pipeline's own channel. `all`: also a short note "
        "when any of its runs ends. Subscribing again changes the level; `{command} subscriptions` lists them.",
        ("subscribe leads-ods", "subscribe finance #data-alerts all", "subscribe rivery failures"),
        (
            ArgSpec("subject", "subject", required=True, help="a pipeline name, a tag or a provider"),
            ArgSpec("channel", "channel", help="where to post, like #data-alerts; this channel if left out"),
            ArgSpec("level", "level", help="failures (the default) or all"),
        ),
        "change",
    ),
    CommandSpec(
        "unsubscribe",
        "unsubscribe <pipeline|tag|provider> [#channel]",
        "Stop announcing a pipeline's, a tag's or a provider's runs in a channel",
        "The channel you name, else this one. Whoever subscribed it may always unsubscribe it.",
        ("unsubscribe leads-ods", "unsubscribe finance #data-alerts"),
        (
            ArgSpec("subject", "subject", required=True, help="a pipeline name, a tag or a provider"),
            ArgSpec("channel", "channel", help="the subscribed channel, like #data-alerts; this channel if left out"),
        ),
        "change",
    ),
    CommandSpec(
        "subscriptions",
        "subscriptions [mine]",
        "The channels subscribed to pipelines, tags and providers",
        "All of this workspace's; with `mine`, the ones you made. The App Home tab lists yours with buttons.",
        ("subscriptions", "subscriptions mine"),
        (ArgSpec("mine", "mine", help="only the subscriptions you made"),),
        aliases=("subs",),
    ),
    CommandSpec(
        "notify",
        "notify me [on|off]",
        "A direct message when a run you start ends (succeeded, failed, canceled)",
        "With its card's link. `on` unless you say `off`.",
        ("notify me", "notify me off"),
        (
            ArgSpec("me", "me", required=True, help="me: the bot tells the person who types it"),
            ArgSpec("switch", "switch", help="on (the default) or off"),
        ),
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

BY_WORD: Mapping[str, CommandSpec] = MappingProxyType(
    {word: spec for spec in COMMANDS for word in (spec.name, *spec.aliases)}
)
_HELP = BY_WORD["help"]


def spec_named(word: str) -> CommandSpec | None:
    """The command a name or alias stands for, any case."""
    return BY_WORD.get(word.strip().lower())
