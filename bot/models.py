"""Domain values shared by every part of the bot: the one status model for all providers.

Pure data, no I/O. Provider clients produce these; the tracker, the store and the Slack
blocks consume them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias

__all__ = [
    "Json", "JsonValue", "RunLog", "RunLogPage", "RunState", "RunStatus", "Stats", "TaskStatus", "TriggerLimit",
    "Triggered",
]

#: JSON another system wrote or will read: Slack's payloads and Web API answers, a provider's answers, PagerDuty's
#: events, a YAML document. Its shape is theirs, so it is typed loosely here and narrowed (isinstance, .get) where
#: it is read. The one ``Any`` of the bot (tests/unit/test_any.py holds every other module to real types).
JsonValue: TypeAlias = Any
#: one JSON object
Json: TypeAlias = dict[str, JsonValue]


class RunState(enum.StrEnum):
    """Normalized state of a run, the same for every provider (see PROVIDERS.md)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    # A raw status we do not know, or one outside the model (Tailer CHECKED, DataKitchen
    # SERVING_RERAN). The raw value is kept and shown; polling stops after a bounded time.
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_live(self) -> bool:
        return self in (RunState.QUEUED, RunState.RUNNING)


_TERMINAL = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELED})


@dataclass(frozen=True, slots=True)
class TaskStatus:
    """One task, step or node of a run, where the provider reports them."""

    name: str
    state: RunState
    raw_status: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class RunStatus:
    """What a provider says about one run at one moment.

    ``raw_status`` and ``message`` are the provider's own words, kept next to ``state``.
    ``final`` is true when the provider will not change this run any more: every terminal
    state, and the few raw statuses outside the model that are known to be final.
    """

    run_id: str
    state: RunState
    raw_status: str
    message: str = ""
    tasks: tuple[TaskStatus, ...] = ()
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration: timedelta | None = None
    warning: str = ""
    final: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)
    #: the provider shows a canceled run as canceled (DataKitchen's ``STOPPED_SERVING``, Rivery v1's ``canceled``),
    #: never as failed: a failure it reports is the run's own, whatever cancel was asked (``bot.store.runs.as_asked``).
    #: False where a cancel may read as a failure (Rivery's legacy API answers ``F`` for a canceled run)
    shows_cancels: bool = False

    def __post_init__(self) -> None:
        if self.state.is_terminal and not self.final:
            object.__setattr__(self, "final", True)

    @property
    def elapsed(self) -> timedelta | None:
        """Duration as reported, else derived from start and end."""
        if self.duration is not None:
            return self.duration
        if self.started_at is not None and self.ended_at is not None:
            return self.ended_at - self.started_at
        return None

    @property
    def failed_tasks(self) -> tuple[TaskStatus, ...]:
        return tuple(t for t in self.tasks if t.state is RunState.FAILED)


@dataclass(frozen=True, slots=True)
class Triggered:
    """The answer to a trigger: the provider's run id, and its first status when it gave one."""

    run_id: str
    status: RunStatus | None = None


@dataclass(frozen=True, slots=True)
class Stats:
    """Run counts per normalized state over a period, from the provider's own statistics."""

    start: datetime
    end: datetime
    counts: Mapping[RunState, int]
    raw: Mapping[str, object] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failure_rate(self) -> float:
        done = self.counts.get(RunState.SUCCEEDED, 0) + self.counts.get(RunState.FAILED, 0)
        return self.counts.get(RunState.FAILED, 0) / done if done else 0.0


@dataclass(frozen=True, slots=True)
class TriggerLimit:
    """A provider's published cap on starting runs: at most ``count`` triggers within ``window``, counting the
    connection's runs whose job has every field of ``job`` (empty: every run of the connection)."""

    count: int
    window: timedelta
    reason: str  # what the person reads: "Rivery allows 2 runs of a river a minute"
    job: Mapping[str, object] = field(default_factory=dict)

    def counts(self, job: Mapping[str, object]) -> bool:
        return all(job.get(key) == value for key, value in self.job.items())


@dataclass(frozen=True, slots=True)
class RunLog:
    """A run's own log as its provider gives it, redacted, oldest line first; ``source`` names the call that gave
    it (for the thread and the docs), ``cut`` says the provider's answer was longer than what was kept."""

    lines: tuple[str, ...]
    source: str
    cut: bool = False


@dataclass(frozen=True, slots=True)
class RunLogPage:
    """A page of a run's whole log, read from a provider's export of it: ``lines`` (redacted) are lines ``first``…
    of ``total``, page ``page`` from the end of ``pages``; ``source`` names the call."""

    lines: tuple[str, ...]
    first: int
    total: int
    page: int
    pages: int
    source: str
