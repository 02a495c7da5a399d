"""Each command as a small typed value: what ``parse`` bound, checked once and named per command.

``parse`` binds tokens to the table's ``ArgSpec``s generically (``Parsed.args``, a mapping by argument name);
``typed`` turns that into one of the ``Command`` values below, so a handler reads ``command.count``, an
``int``, instead of casting ``args["n"]``. A value of the wrong type here is a grammar bug, not a person's
typo: it raises ``TypeError``. Pure: no Slack client, no catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal, TypeAlias

from bot.slack.commands.grammar import AdHocTarget, Parsed

__all__ = [
    "Cancel",
    "Command",
    "Help",
    "Last",
    "ListPipelines",
    "Mute",
    "NotifyMe",
    "OpenRunModal",
    "PipelineOp",
    "Run",
    "Schedules",
    "Stats",
    "Status",
    "Subscribe",
    "Subscriptions",
    "Target",
    "Unmute",
    "Unsubscribe",
    "Watch",
    "typed",
]

#: a catalog name, or a job outside the catalog (``rivery:12345``)
Target: TypeAlias = str | AdHocTarget
Op = Literal["enable", "disable", "archive", "reset"]


@dataclass(frozen=True, slots=True)
class Help:
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class ListPipelines:
    filter: str | None = None


@dataclass(frozen=True, slots=True)
class OpenRunModal:
    """Bare ``run``: pick a pipeline in a form."""


@dataclass(frozen=True, slots=True)
class Run:
    target: Target
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Status:
    run: int | None = None


@dataclass(frozen=True, slots=True)
class Last:
    pipeline: Target
    count: int


@dataclass(frozen=True, slots=True)
class Cancel:
    run: int


@dataclass(frozen=True, slots=True)
class PipelineOp:
    """enable, disable, archive or reset: switched at the provider after a confirmation."""

    op: Op
    pipeline: Target


@dataclass(frozen=True, slots=True)
class Stats:
    pipeline: Target | None
    period: timedelta


@dataclass(frozen=True, slots=True)
class Watch:
    """``watch`` (``enabled``) or ``unwatch``; ``channel`` only with watch."""

    pipeline: Target
    enabled: bool
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Mute:
    pipeline: Target
    duration: timedelta


@dataclass(frozen=True, slots=True)
class Unmute:
    pipeline: Target


@dataclass(frozen=True, slots=True)
class Schedules:
    pass


@dataclass(frozen=True, slots=True)
class Subscribe:
    """``subject``: as typed, a pipeline, a tag or a provider; ``channel`` None: where the command was typed."""

    subject: str
    channel: str | None
    level: Literal["failures", "all"]


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    subject: str
    channel: str | None


@dataclass(frozen=True, slots=True)
class Subscriptions:
    mine: bool


@dataclass(frozen=True, slots=True)
class NotifyMe:
    on: bool


Command: TypeAlias = (
    Help
    | ListPipelines
    | OpenRunModal
    | Run
    | Status
    | Last
    | Cancel
    | PipelineOp
    | Stats
    | Watch
    | Mute
    | Unmute
    | Schedules
    | Subscribe
    | Unsubscribe
    | Subscriptions
    | NotifyMe
)


def typed(parsed: Parsed) -> Command:
    """The command ``parse`` found, as its own type."""
    if parsed.open_modal:
        return OpenRunModal()
    return _BUILDERS[parsed.spec.name](_Args(parsed.args))


@dataclass(frozen=True, slots=True)
class _Args:
    """``Parsed.args`` read with the type each argument kind has (see ``ArgSpec``)."""

    values: Mapping[str, object]

    def target(self, name: str) -> Target:
        value = self.values[name]
        if not isinstance(value, str | AdHocTarget):
            raise TypeError(f"{name}: {type(value).__name__}")
        return value

    def maybe_target(self, name: str) -> Target | None:
        return self.target(name) if name in self.values else None

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name}: {type(value).__name__}")
        return value

    def number(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{name}: {type(value).__name__}")
        return value

    def span(self, name: str) -> timedelta:
        value = self.values[name]
        if not isinstance(value, timedelta):
            raise TypeError(f"{name}: {type(value).__name__}")
        return value

    def params(self, name: str) -> dict[str, str]:
        value = self.values.get(name) or {}
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise TypeError(f"{name}: {type(value).__name__}")
        return value


def _text(args: _Args, name: str) -> str:
    value = args.text(name)
    if value is None:
        raise TypeError(f"{name}: missing")
    return value


def _required(value: int | None, name: str) -> int:
    if value is None:
        raise TypeError(f"{name}: missing")
    return value


_BUILDERS: Mapping[str, Callable[[_Args], Command]] = {
    "help": lambda a: Help(a.text("command")),
    "list": lambda a: ListPipelines(a.text("filter")),
    "run": lambda a: Run(a.target("pipeline"), a.params("params")),
    "status": lambda a: Status(a.number("run")),
    "last": lambda a: Last(a.target("pipeline"), _required(a.number("n"), "n")),
    "cancel": lambda a: Cancel(_required(a.number("run"), "run")),
    "enable": lambda a: PipelineOp("enable", a.target("pipeline")),
    "disable": lambda a: PipelineOp("disable", a.target("pipeline")),
    "archive": lambda a: PipelineOp("archive", a.target("pipeline")),
    "reset": lambda a: PipelineOp("reset", a.target("pipeline")),
    "stats": lambda a: Stats(a.maybe_target("pipeline"), a.span("period")),
    "watch": lambda a: Watch(a.target("pipeline"), True, a.text("channel")),
    "unwatch": lambda a: Watch(a.target("pipeline"), False),
    "mute": lambda a: Mute(a.target("pipeline"), a.span("duration")),
    "unmute": lambda a: Unmute(a.target("pipeline")),
    "schedules": lambda a: Schedules(),
    "subscribe": lambda a: Subscribe(
        _text(a, "subject"), a.text("channel"), "all" if a.text("level") == "all" else "failures"
    ),
    "unsubscribe": lambda a: Unsubscribe(_text(a, "subject"), a.text("channel")),
    "subscriptions": lambda a: Subscriptions(a.text("mine") == "mine"),
    "notify": lambda a: NotifyMe(a.text("switch") != "off"),
}
